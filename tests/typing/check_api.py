"""Read by mypy only (``mypy`` checks ``tests/typing``): the public API's types are right."""

from __future__ import annotations

import pathlib
from datetime import datetime, timedelta
from typing import assert_type

import anyjob
from anyjob import instrumentation, testing
from anyjob.stores import MemoryStore, SQLiteStore, Store


async def fetch(ctx: anyjob.Context) -> int:
    ctx.set_progress(0.5, "half")
    ctx.set_result(1)
    return 2


async def plain() -> str:
    return "x"


async def check() -> None:
    job = anyjob.Job(fetch, name="fetch", labels={"k": "v"})
    assert_type(job, anyjob.Job[int])
    assert_type(job.result, int | None)
    assert_type(job.state, anyjob.State)
    assert_type(job.error, BaseException | None)
    assert_type(job.created_at, datetime)
    assert_type(job.started_at, datetime | None)
    assert_type(job.execution_time, timedelta)
    assert_type(job.stats(), anyjob.JobStats)
    assert_type(job.cancel(), bool)
    assert_type(await job.run({"a": 1}), None)

    wrapped = anyjob.Job(anyjob.wrap(plain))
    assert_type(wrapped, anyjob.Job[str])

    ex = anyjob.Executor(job, retry=anyjob.Retry(3, delay=timedelta(seconds=1), jitter=0.1), timeout=5)
    assert_type(await ex.start(), int)
    assert_type(ex.stats(), anyjob.ExecutorStats)
    assert_type(await ex.stop(), bool)

    policy = anyjob.Policy(retry=2, timeout=1.0)
    assert_type(policy.executor(fetch), anyjob.Executor[int])
    decorated = policy(fetch)
    assert_type(decorated, anyjob.PolicyFunction[int])
    assert_type(await decorated("params"), int)

    with testing.set_testing(True, attempts=1), testing.capture_events() as events:
        assert_type(events, list[instrumentation.HookEvent])

    instrumentation.set_hooks([*instrumentation.get_hooks(), events.append])


async def check_manager() -> None:
    async with anyjob.JobManager(max_concurrency=2, retention=timedelta(hours=1)) as jobs:
        jobs.register(fetch, name="fetch")
        ref = await jobs.submit(fetch, {"a": 1}, labels={"k": "v"}, priority=1, delay=0.5, retry=3, timeout=2)
        assert_type(ref, anyjob.JobRef)
        assert_type(await jobs.submit("fetch"), anyjob.JobRef)
        assert_type(await jobs.get(ref.id), anyjob.JobInfo | None)
        assert_type(await jobs.status(ref.id), anyjob.State | None)
        assert_type(await jobs.wait(ref.id, timeout=1.0), anyjob.JobInfo | None)
        assert_type(await jobs.list(state=[anyjob.State.FAILED], limit=10), list[anyjob.JobInfo])
        assert_type(await jobs.stats(name="fetch"), anyjob.JobStatistics)
        assert_type(await jobs.cancel(ref.id), bool)
        assert_type(await jobs.retry(ref.id), anyjob.JobRef)
        assert_type(await jobs.cleanup(timedelta(minutes=5)), int)
        async for event in jobs.events(ref.id):
            assert_type(event, anyjob.JobEvent)


async def check_stores(path: pathlib.Path) -> None:
    durable = SQLiteStore(path, poll_interval=0.5)
    assert_type(durable.path, str)
    for store in (MemoryStore(), durable):
        assert isinstance(store, Store)
        async with anyjob.JobManager(store) as jobs:
            assert_type(jobs.store, Store)
    durable.close()
