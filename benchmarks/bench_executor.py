"""Executor success path versus the hand-written tenacity + anyio equivalent.

Target (issue 3; measured in the default configuration since issue 8):
``Executor(job, retry=Retry(3), timeout=10).start()`` costs at most 0.5x a fresh
``tenacity.AsyncRetrying(stop=stop_after_attempt(3))`` around ``anyio.fail_after(10)``.
"""

from __future__ import annotations

import anyio
import tenacity

import anyjob
from benchmarks._harness import DESCRIPTIONS, Competitor, Config, Result, Target, compare, report_target


async def work() -> None:
    return None


async def job_work(ctx: anyjob.Context) -> None:
    return None


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


def compare_backend(n: int, rounds: int, backend: str, config: Config) -> list[Result]:
    label = DESCRIPTIONS[config]
    return compare(
        f"Executor success path vs hand-written tenacity + fail_after ({backend}, {label})",
        [
            Competitor("tenacity.AsyncRetrying + anyio.fail_after", hand_written, backend),
            Competitor("anyjob Executor(Job, Retry(3), timeout=10)", executors, backend, config),
            Competitor("  ...one executor started n times", one_executor, backend, config),
        ],
        n=n,
        rounds=rounds,
    )


def main(n: int = 20_000, rounds: int = 5) -> list[Target]:
    """Run the comparisons (default configuration first, then silenced) and print them."""
    targets = [
        report_target(Target(f"Executor start vs tenacity ({backend})", results[1].ratio, 0.5))
        for backend in ("asyncio", "trio")
        for results in [compare_backend(n, rounds, backend, "default")]
    ]
    compare_backend(n, rounds, "asyncio", "silenced")
    return targets


if __name__ == "__main__":
    main()
