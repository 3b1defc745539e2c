"""Context variables: jobs start in the manager's context, and nothing one job sets leaks into another."""

from __future__ import annotations

import contextvars

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import MakeStore, ok

import anyjob
from anyjob import Context, JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


async def test_context_variables_do_not_leak_between_jobs(make_store: MakeStore) -> None:
    seen: list[str] = []
    entered = anyio.Event()

    async def sets(ctx: Context) -> None:
        seen.append(request_id.get())
        request_id.set(f"set by {ctx.params}")
        if ctx.params == "canceled":
            entered.set()
            await anyio.sleep_forever()

    request_id.set("app")  # the manager's context: what every job starts with
    async with JobManager(make_store(), max_concurrency=1) as jobs:  # one worker at a time runs them all
        token = request_id.set("request A")  # a submitter's own context is not handed on
        try:
            await jobs.wait((await jobs.submit(sets, "first")).id)
            await jobs.wait((await jobs.submit(sets, "second")).id)
            await jobs.wait((await jobs.submit(sets, "retried", retry=2)).id)
            canceled = await jobs.submit(sets, "canceled")
            await entered.wait()
            await jobs.cancel(canceled.id)
            await jobs.wait(canceled.id)
            await jobs.wait((await jobs.submit(sets, "last")).id)
        finally:
            request_id.reset(token)
    assert seen == ["app"] * 5
    assert request_id.get() == "app"


async def test_jobs_that_leave_the_context_alone_share_a_worker(make_store: MakeStore) -> None:
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        for i in range(20):
            await jobs.wait((await jobs.submit(ok, i)).id)
    assert jobs._statistics().worker_starts == 1


async def test_jobs_that_set_context_variables_run_isolated_after_the_first(make_store: MakeStore) -> None:
    seen: list[str] = []
    entered = anyio.Event()
    attempts: dict[str, int] = {}

    async def binds(ctx: Context) -> str:
        seen.append(request_id.get())
        request_id.set(f"job {ctx.params}")
        await anyio.lowlevel.checkpoint()
        assert request_id.get() == f"job {ctx.params}"  # its own value, across awaits
        if ctx.params == "block":
            entered.set()
            await anyio.sleep_forever()
        if ctx.params == "fail":
            raise ValueError(request_id.get())
        if ctx.params == "flaky":
            attempts["flaky"] = attempts.get("flaky", 0) + 1
            if attempts["flaky"] == 1:
                msg = "first attempt fails"
                raise ConnectionError(msg)
        return request_id.get()

    request_id.set("app")
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        infos = [await jobs.wait((await jobs.submit(binds, i)).id) for i in range(10)]
        blocked = await jobs.submit(binds, "block")
        await entered.wait()
        assert await jobs.cancel(blocked.id) is True
        blocked_info = await jobs.wait(blocked.id)
        failed = await jobs.wait((await jobs.submit(binds, "fail")).id)
        flaky = await jobs.wait((await jobs.submit(binds, "flaky", retry=anyjob.Retry(2, delay=0))).id)
        after = await jobs.wait((await jobs.submit(binds, "after")).id)
    assert [info.result for info in infos if info] == [f"job {i}" for i in range(10)]
    # Every job starts in the manager's context; the attempts of one job share one (as in one task).
    assert seen == ["app"] * 13 + ["job flaky", "app"]
    # The first job retired one worker (and the Executor spec learned once); no more.
    assert jobs._statistics().worker_starts <= 3
    assert blocked_info is not None
    assert blocked_info.state is State.CANCELED
    assert failed is not None
    assert failed.state is State.FAILED
    assert failed.error == "job fail"
    assert flaky is not None
    assert (flaky.state, flaky.attempts, flaky.result) == (State.SUCCEEDED, 2, "job flaky")
    assert after is not None
    assert after.result == "job after"
    assert request_id.get() == "app"
