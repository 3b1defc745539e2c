"""Read by mypy only (``mypy`` checks ``tests/typing``): the public API's types are right."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import assert_type

import anyjob
from anyjob import instrumentation, testing


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
