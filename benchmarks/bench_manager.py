"""JobManager throughput against what a user would write instead, in the default configuration.

Targets (issue 8, default configuration: hooks as shipped, structlog unconfigured):
* 100k trivial jobs submitted to ``JobManager()``, then the manager left: <= 1.0x an
  ``asyncio.TaskGroup`` creating 100k tasks of the same trivial coroutine;
* 100k trivial jobs submitted, then ``await jobs.wait(id)`` for each: <= 1.0x
  ``create_task`` for each, then ``await`` each task.

aiojobs and trio's nursery are shown for information. The same
comparisons with silenced hooks (``set_hooks([])``) run afterwards, as separate rows.
"""

from __future__ import annotations

import asyncio

import aiojobs
import trio

import anyjob
from benchmarks._harness import DESCRIPTIONS, Competitor, Config, Result, Target, compare, report_target


async def work() -> None:
    return None


async def job_work(ctx: anyjob.Context) -> None:
    return None


async def task_group(n: int) -> None:
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(work())


async def task_group_await_each(n: int) -> None:
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(work()) for _ in range(n)]
        for task in tasks:
            await task


async def create_task_await_each(n: int) -> None:
    tasks = [asyncio.create_task(work()) for _ in range(n)]
    for task in tasks:
        await task


async def aiojobs_scheduler(n: int) -> None:
    # aiojobs' defaults (at most 100 at once, the rest pending): its fast configuration.
    # limit=None with wait_and_close() measures about 8x here.
    scheduler = aiojobs.Scheduler()
    for _ in range(n):
        await scheduler.spawn(work())
    await scheduler.wait_and_close()


async def trio_nursery(n: int) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(work)


async def manager(n: int) -> None:
    async with anyjob.JobManager() as jobs:
        for _ in range(n):
            await jobs.submit(job_work)


async def manager_limited(n: int) -> None:
    async with anyjob.JobManager(max_concurrency=100) as jobs:
        for _ in range(n):
            await jobs.submit(job_work)


async def manager_wait_each(n: int) -> None:
    async with anyjob.JobManager() as jobs:
        refs = [await jobs.submit(job_work) for _ in range(n)]
        for ref in refs:
            await jobs.wait(ref.id)


def compare_left(n: int, rounds: int, config: Config, *, references: bool) -> list[Result]:
    """Trivial jobs submitted, then the manager left, against an ``asyncio.TaskGroup``."""
    label = DESCRIPTIONS[config]
    competitors = [
        Competitor("asyncio.TaskGroup, n tasks", task_group),
        Competitor("anyjob.JobManager(), n submits, then left", manager, config=config),
    ]
    if references:
        competitors += [
            Competitor("  ...JobManager(max_concurrency=100)", manager_limited, config=config),
            Competitor("aiojobs.Scheduler() (its defaults), for reference", aiojobs_scheduler),
        ]
    return compare(
        f"Trivial jobs submitted, then the manager left, vs asyncio.TaskGroup ({label})",
        competitors,
        n=n,
        rounds=rounds,
    )


def compare_wait_each(n: int, rounds: int, config: Config, *, references: bool) -> list[Result]:
    """Trivial jobs submitted, then ``wait(id)`` each, against ``create_task`` + ``await`` each."""
    label = DESCRIPTIONS[config]
    competitors = [
        Competitor("asyncio.create_task each, then await each", create_task_await_each),
        Competitor("anyjob.JobManager(), submit each, then wait(id) each", manager_wait_each, config=config),
    ]
    if references:
        competitors.append(
            Competitor("asyncio.TaskGroup, create_task each, await each (reference)", task_group_await_each)
        )
    return compare(
        f"Trivial jobs submitted, then waited for one by one, vs create_task + await each ({label})",
        competitors,
        n=n,
        rounds=rounds,
    )


def headline(n: int, rounds: int) -> list[Target]:
    """The default-configuration target rows, then trio for information."""
    left = compare_left(n, rounds, "default", references=True)
    targets = [report_target(Target(f"{n:,} jobs submitted, manager left, vs TaskGroup", left[1].ratio, 1.0))]
    each = compare_wait_each(n, rounds, "default", references=True)
    targets.append(
        report_target(
            Target(f"{n:,} jobs submitted, wait(id) each, vs create_task + await", each[1].ratio, 1.0)
        )
    )
    compare(
        "For information, on trio: trivial jobs submitted, then the manager left, vs a nursery "
        f"({DESCRIPTIONS['default']})",
        [
            Competitor("trio nursery, n start_soon", trio_nursery, backend="trio"),
            Competitor("anyjob.JobManager(), n submits, then left", manager, "trio", "default"),
        ],
        n=n,
        rounds=rounds,
    )
    return targets


def silenced(n: int, rounds: int) -> None:
    """The same comparisons with ``set_hooks([])`` (run after the headline rows)."""
    compare_left(n, rounds, "silenced", references=False)
    compare_wait_each(n, rounds, "silenced", references=False)


def main(n: int = 100_000, rounds: int = 5) -> list[Target]:
    """Run the comparisons (default configuration first, then silenced) and print them."""
    targets = headline(n, rounds)
    silenced(n, rounds)
    return targets


if __name__ == "__main__":
    main()
