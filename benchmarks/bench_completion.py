"""``as_completed`` against ``wait(id)`` for each job, over finished and running jobs.

Target (issue 9, default configuration): over 100k jobs, half of them finished and half
still running when the waiting starts, ``as_completed(ids)`` costs no more per job than
``await jobs.wait(id)`` for each. Only the waiting is timed (the submissions before it are
the same for both); the running half is released at the consumer's first checkpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

import anyjob
from benchmarks._harness import DESCRIPTIONS, Competitor, Config, Target, compare, now, report_target

Consume = Callable[[anyjob.JobManager, list[str]], Awaitable[None]]


async def _trivial(ctx: anyjob.Context) -> None:
    return None


async def _scenario(n: int, consume: Consume) -> float:
    release = anyio.Event()

    async def held(ctx: anyjob.Context) -> None:
        await release.wait()

    async with anyjob.JobManager() as jobs:
        finished = [(await jobs.submit(_trivial)).id for _ in range(n // 2)]
        for job_id in finished:
            await jobs.wait(job_id)
        running = [(await jobs.submit(held)).id for _ in range(n - n // 2)]
        await anyio.wait_all_tasks_blocked()
        ids = [job_id for pair in zip(finished, running, strict=False) for job_id in pair]
        ids += finished[len(running) :] + running[len(finished) :]
        async with anyio.create_task_group() as tg:
            tg.start_soon(_release_soon, release)
            start = now()
            await consume(jobs, ids)
            return now() - start


async def _release_soon(release: anyio.Event) -> None:
    release.set()  # runs at the consumer's first checkpoint


async def _wait_each(jobs: anyjob.JobManager, ids: list[str]) -> None:
    for job_id in ids:
        await jobs.wait(job_id)


async def _as_completed(jobs: anyjob.JobManager, ids: list[str]) -> None:
    async for _ in jobs.as_completed(ids):
        pass


async def wait_each(n: int) -> float:
    return await _scenario(n, _wait_each)


async def as_completed(n: int) -> float:
    return await _scenario(n, _as_completed)


def headline(n: int, rounds: int, config: Config = "default") -> Target:
    """The target row: as_completed per job against wait(id) per job."""
    results = compare(
        f"Half finished, half running: waiting for every job ({DESCRIPTIONS[config]})",
        [
            Competitor("JobManager.wait(id) each", wait_each, config=config),
            Competitor("JobManager.as_completed(ids)", as_completed, config=config),
        ],
        n=n,
        rounds=rounds,
    )
    return report_target(Target(f"{n:,} jobs, as_completed vs wait(id) each", results[1].ratio, 1.0))


if __name__ == "__main__":
    headline(100_000, 5)
