"""JobManager: throughput against a bare asyncio.TaskGroup, bytes per finished job, flat memory.

Targets (issue 4):
* 100k trivial jobs submitted and awaited through the manager cost at most 1.0x the same
  coroutines under a bare ``asyncio.TaskGroup`` (aiojobs is shown for reference);
* a finished job retains at most 600 bytes in a ``MemoryStore`` (tracemalloc);
* with ``retention`` set, a million short jobs run with flat peak RSS.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable

import aiojobs
import anyio
import anyio.lowlevel
import trio

import anyjob
from anyjob import instrumentation
from anyjob.stores import PostgresStore, SQLiteStore
from benchmarks import bench_job
from benchmarks._harness import Competitor, Result, compare


async def work() -> int:
    return 1


async def job_work(ctx: anyjob.Context) -> int:
    return 1


async def task_group(n: int) -> None:
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(work())


async def task_group_await_each(n: int) -> None:
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(work()) for _ in range(n)]
        for task in tasks:
            await task


async def aiojobs_scheduler(n: int) -> None:
    # aiojobs' defaults (at most 100 at once, the rest pending): its fast configuration.
    # limit=None with wait_and_close() measures about 8x here.
    scheduler = aiojobs.Scheduler()
    for _ in range(n):
        await scheduler.spawn(work())
    await scheduler.wait_and_close()


async def anyio_task_group(n: int) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(work)


async def trio_nursery(n: int) -> None:
    async def trio_work() -> int:
        return 1

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(trio_work)


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


POSTGRES_DSN = os.environ.get("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _silence() -> None:
    instrumentation.set_hooks([])


def _restore() -> None:
    instrumentation.reset_hooks()


def throughput(n: int, rounds: int) -> list[Result]:
    results = compare(
        "Trivial jobs submitted and awaited: JobManager vs asyncio.TaskGroup",
        [
            Competitor("asyncio.TaskGroup", task_group),
            Competitor("aiojobs.Scheduler() (reference)", aiojobs_scheduler),
            Competitor("anyio task group (reference)", anyio_task_group),
            Competitor("anyjob JobManager()", manager, setup=_silence, teardown=_restore),
            Competitor(
                "anyjob JobManager(max_concurrency=100)", manager_limited, setup=_silence, teardown=_restore
            ),
            Competitor(
                "  ...default hook, structlog >= WARNING",
                manager,
                setup=bench_job.production_logging,
                teardown=bench_job.restore_logging,
            ),
        ],
        n=n,
        rounds=rounds,
    )
    print(
        f"  -> target: <= 1.0x a bare TaskGroup; measured {results[3].ratio:.2f}x "
        f"({results[4].ratio:.2f}x with max_concurrency, {results[5].ratio:.2f}x with the default hook)"
    )
    each = compare(
        "The same, awaiting each one: jobs.wait(id) vs await task",
        [
            Competitor("asyncio.TaskGroup, await each task", task_group_await_each),
            Competitor(
                "anyjob JobManager(), wait(id) for each", manager_wait_each, setup=_silence, teardown=_restore
            ),
        ],
        n=n,
        rounds=rounds,
    )
    print(f"  -> for reference (each wait() builds a JobInfo snapshot): {each[1].ratio:.2f}x")
    on_trio = compare(
        "For information, on trio: JobManager vs a nursery",
        [
            Competitor("trio nursery + start_soon", trio_nursery, backend="trio"),
            Competitor("anyjob JobManager()", manager, backend="trio", setup=_silence, teardown=_restore),
        ],
        n=n,
        rounds=rounds,
    )
    return results + each + on_trio


def bytes_per_finished_job(n: int) -> float:
    """Bytes a finished job retains in a MemoryStore (records, indexes, counters)."""

    async def main() -> float:
        async with anyjob.JobManager() as jobs:
            await jobs.submit(job_work)  # warm every structure up
            await jobs.wait((await jobs.list(limit=1))[0].id)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            refs = [await jobs.submit(job_work, labels={"batch": "b"}) for _ in range(n)]
            await jobs.wait(refs[-1].id)
            for ref in refs[-10:]:
                await jobs.wait(ref.id)
            del refs
            assert (await jobs.stats()).active == 0
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            return (after - before) / n

    _silence()
    try:
        per_job = anyio.run(main)
    finally:
        _restore()
    print(f"\nBytes retained per finished job in MemoryStore (n={n:,}, tracemalloc): {per_job:.0f} B")
    print(f"  -> target: <= 600 B; measured {per_job:.0f} B")
    return per_job


def _rss_mb() -> float:
    with open("/proc/self/status") as status:  # noqa: PTH123 - linux only, like the CI machine
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def flat_memory(n: int, report_every: int) -> list[float]:
    """Run *n* short jobs through a manager with retention; print RSS at intervals."""
    samples: list[float] = []

    async def main() -> None:
        async with anyjob.JobManager(retention=0.05, max_concurrency=64) as jobs:
            start = time.perf_counter()
            for i in range(1, n + 1):
                await jobs.submit(job_work)
                if i % 1000 == 0:
                    await anyio.lowlevel.checkpoint()  # let the workers and the cleanup keep up
                if i % report_every == 0:
                    stats = await jobs.stats()
                    samples.append(_rss_mb())
                    print(
                        f"  {i:>9,} jobs  RSS {samples[-1]:7.1f} MB  kept {stats.total:>7,}  "
                        f"{(time.perf_counter() - start) / i * 1e6:5.1f} µs/job"
                    )

    print(f"\n{n:,} jobs through JobManager(retention=0.05 s): resident memory at intervals")
    _silence()
    try:
        anyio.run(main)
    finally:
        _restore()
    half = samples[len(samples) // 2 :]
    growth = (max(half) - min(half)) if half else 0.0
    print(f"  -> target: flat; RSS spread over the second half {growth:.1f} MB (peak {max(samples):.1f} MB)")
    return samples


def durable_stores(n: int) -> None:
    """For information: trivial jobs through a manager over each durable store (no target)."""
    print(f"\nFor information: {n:,} trivial jobs through JobManager over a durable store")
    with tempfile.TemporaryDirectory() as directory:
        stores: list[tuple[str, Callable[[], SQLiteStore | PostgresStore]]] = [
            ("SQLiteStore (a file, WAL)", lambda: SQLiteStore(pathlib.Path(directory) / "bench.db")),
        ]
        try:
            import psycopg

            psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
        except Exception as exc:
            print(f"  PostgresStore: skipped ({exc})")
        else:
            stores.append(
                ("PostgresStore (localhost)", lambda: PostgresStore(POSTGRES_DSN, schema="anyjob_bench"))
            )
        for label, make in stores:
            store = make()

            async def main(store: SQLiteStore | PostgresStore = store) -> float:
                start = time.perf_counter()
                async with anyjob.JobManager(store) as jobs:
                    for _ in range(n):
                        await jobs.submit(job_work)
                return time.perf_counter() - start

            _silence()
            try:
                elapsed = anyio.run(main)
            finally:
                _restore()
                store.close()
            print(f"  {label:<28} {elapsed / n * 1e6:9.1f} µs/job")
        if len(stores) > 1:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute('DROP SCHEMA IF EXISTS "anyjob_bench" CASCADE')


def main(n: int = 100_000, rounds: int = 5, million: int = 1_000_000) -> list[Result]:
    """Run every manager benchmark and print it."""
    results = throughput(n, rounds)
    bytes_per_finished_job(min(n, 50_000))
    flat_memory(million, max(million // 10, 1))
    durable_stores(max(n // 20, 10))
    return results


if __name__ == "__main__":
    main()
