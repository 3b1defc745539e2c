"""Job.run versus a bare asyncio task: what do tracking and cancellability cost?

Target (issue 8, default configuration): ``await Job(fn).run()`` one after another costs
at most 1.0x ``await asyncio.create_task(coro())`` one after another.
"""

from __future__ import annotations

import asyncio

import trio

import anyjob
from benchmarks._harness import DESCRIPTIONS, Competitor, Config, Result, Target, compare, report_target


async def work() -> None:
    return None


async def job_work(ctx: anyjob.Context) -> None:
    return None


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


def compare_run(n: int, rounds: int, config: Config, *, references: bool = False) -> list[Result]:
    """``Job(fn).run()`` one after another against ``await asyncio.create_task(...)``."""
    competitors = [
        Competitor("await asyncio.create_task(f())", bare_tasks),
        Competitor("await anyjob.Job(fn).run()", jobs, config=config),
    ]
    if references:
        competitors.append(Competitor("  ...jobs built beforehand", jobs_prebuilt, config=config))
    return compare(
        "Job(fn).run() one after another vs await asyncio.create_task() one after another "
        f"({DESCRIPTIONS[config]})",
        competitors,
        n=n,
        rounds=rounds,
    )


def headline(n: int, rounds: int) -> Target:
    """The default-configuration target row, then trio for information."""
    results = compare_run(n, rounds, "default", references=True)
    target = report_target(
        Target("Job(fn).run() one after another vs create_task + await", results[1].ratio, 1.0)
    )
    compare(
        f"For information, on trio: Job(fn).run() vs a nursery per task ({DESCRIPTIONS['default']})",
        [
            Competitor("trio nursery + start_soon, one at a time", trio_tasks, backend="trio"),
            Competitor("await anyjob.Job(fn).run()", jobs, "trio", "default"),
        ],
        n=n,
        rounds=rounds,
    )
    return target


def silenced(n: int, rounds: int) -> list[Result]:
    """The same comparison with ``set_hooks([])``."""
    return compare_run(n, rounds, "silenced")


def main(n: int = 100_000, rounds: int = 5) -> None:
    """Run the comparisons and print them."""
    headline(n, rounds)
    silenced(n, rounds)


if __name__ == "__main__":
    main()
