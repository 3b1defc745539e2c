"""Job.run versus a bare asyncio task: what does tracking and cancellability cost?

Target (issue 2): ``await Job(fn).run()`` one after another costs at most 1.25x
``await asyncio.create_task(coro())`` one after another.
"""

from __future__ import annotations

import asyncio
import logging

import structlog
import trio

import anyjob
from anyjob import instrumentation
from benchmarks._harness import Competitor, Result, compare


async def work() -> int:
    return 1


async def job_work(ctx: anyjob.Context) -> int:
    return 1


async def bare_tasks(n: int) -> None:
    for _ in range(n):
        await asyncio.create_task(work())


async def jobs(n: int) -> None:
    for _ in range(n):
        await anyjob.Job(job_work).run()


async def jobs_prebuilt(n: int) -> None:
    for job in [anyjob.Job(job_work) for _ in range(n)]:
        await job.run()


async def trio_tasks(n: int) -> None:
    # The trio counterpart of create_task + await: a nursery per task.
    for _ in range(n):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(work)


def _silence() -> None:
    instrumentation.set_hooks([])


def production_logging() -> None:
    """The default hook, with structlog configured the way applications do."""
    # What an application typically does: structlog filtering below WARNING.
    instrumentation.reset_hooks()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )


def restore_logging() -> None:
    """Undo :func:`production_logging`."""
    instrumentation.reset_hooks()
    structlog.reset_defaults()


def main(n: int = 50_000, rounds: int = 5) -> list[Result]:
    """Run the comparison and print it."""
    results = compare(
        "Job.run() one after another vs asyncio.create_task() awaited one after another",
        [
            Competitor("asyncio.create_task + await", bare_tasks),
            Competitor("anyjob Job(fn).run(), hooks off", jobs, setup=_silence, teardown=restore_logging),
            Competitor("  ...jobs built beforehand", jobs_prebuilt, setup=_silence, teardown=restore_logging),
            Competitor(
                "  ...default hook, structlog >= WARNING",
                jobs,
                setup=production_logging,
                teardown=restore_logging,
            ),
        ],
        n=n,
        rounds=rounds,
    )
    compare(
        "For information, on trio: Job.run() vs a nursery per task",
        [
            Competitor("trio nursery + start_soon", trio_tasks, backend="trio"),
            Competitor("anyjob Job(fn).run(), hooks off", jobs, "trio", _silence, restore_logging),
        ],
        n=n,
        rounds=rounds,
    )
    ratio = results[1].ratio
    print(f"  -> target: Job.run (hooks off) <= 1.25x a bare task; measured {ratio:.2f}x")
    return results


if __name__ == "__main__":
    main()
