"""Executor success path versus the hand-written tenacity + anyio equivalent.

Target (issue 3): ``Executor(job, retry=Retry(3), timeout=10).start()`` costs at
most 0.5x a fresh ``tenacity.AsyncRetrying(stop=stop_after_attempt(3))`` around
``anyio.fail_after(10)``.
"""

from __future__ import annotations

import anyio
import tenacity

import anyjob
from anyjob import instrumentation
from benchmarks._harness import Competitor, Result, compare


async def work() -> int:
    return 1


async def job_work(ctx: anyjob.Context) -> int:
    return 1


async def hand_written(n: int) -> None:
    for _ in range(n):
        async for attempt in tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(3), sleep=anyio.sleep, reraise=True
        ):
            with attempt, anyio.fail_after(10):
                await work()


async def executors(n: int) -> None:
    for _ in range(n):
        await anyjob.Executor(anyjob.Job(job_work), retry=anyjob.Retry(3), timeout=10).start()


async def one_executor(n: int) -> None:
    ex = anyjob.Executor(anyjob.Job(job_work), retry=anyjob.Retry(3), timeout=10)
    for _ in range(n):
        await ex.start()


def _silence() -> None:
    instrumentation.set_hooks([])


def _restore() -> None:
    instrumentation.reset_hooks()


def main(n: int = 20_000, rounds: int = 5) -> list[Result]:
    """Run the comparison and print it."""
    results = []
    for backend in ("asyncio", "trio"):
        results += compare(
            f"Executor success path vs hand-written tenacity + fail_after ({backend})",
            [
                Competitor("tenacity.AsyncRetrying + anyio.fail_after", hand_written, backend),
                Competitor(
                    "anyjob Executor(Job, Retry(3), timeout=10)", executors, backend, _silence, _restore
                ),
                Competitor("  ...one executor started n times", one_executor, backend, _silence, _restore),
            ],
            n=n,
            rounds=rounds,
        )
    print(f"  -> target: <= 0.5x; measured {results[1].ratio:.2f}x (asyncio), {results[4].ratio:.2f}x (trio)")
    return results


if __name__ == "__main__":
    main()
