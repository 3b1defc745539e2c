"""External jobs: ``create``, then ``update``, ``complete``, ``fail`` by id, over every store."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import anyio
import pytest
from tests.manager.support import MakeStore

from anyjob import (
    JobCanceledError,
    JobError,
    JobManager,
    JobNotFoundError,
    JobStateError,
    ManagerClosedError,
    State,
    instrumentation,
)
from anyjob.instrumentation import HookEvent

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_create_update_complete(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("export", {"user": 7}, labels={"kind": "csv"}, message="queued")
        created = await jobs.get(ref.id)
        assert created is not None
        assert (created.state, created.message, created.params, created.attempts) == (
            State.CREATED,
            "queued",
            {"user": 7},
            0,
        )
        assert created.started_at is None
        running = await jobs.update(ref.id, 0.25, "a quarter")
        assert (running.state, running.progress, running.message, running.attempts) == (
            State.RUNNING,
            0.25,
            "a quarter",
            1,
        )
        assert running.started_at is not None
        assert running.updated_at is not None
        assert running.updated_at >= running.started_at
        again = await jobs.update(ref.id, message="still going")  # progress kept
        assert (again.progress, again.message) == (0.25, "still going")
        done = await jobs.complete(ref.id, {"rows": 10})
        assert (done.state, done.result) == (State.SUCCEEDED, {"rows": 10})
        stored = await jobs.wait(ref.id, timeout=5)
        assert stored is not None
        assert (stored.state, stored.result, stored.progress, dict(stored.labels)) == (
            State.SUCCEEDED,
            {"rows": 10},
            0.25,
            {"kind": "csv"},
        )
        assert stored.ended_at is not None
        assert stored.started_at == running.started_at


async def test_complete_or_fail_without_an_update_pass_through_running(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        first = await jobs.create("a")
        second = await jobs.create("b")
        done = await jobs.complete(first.id)
        failed = await jobs.fail(second.id, "disk full")
    for info in (done, failed):
        assert info.started_at is not None
        assert info.ended_at is not None
        assert info.attempts == 1
    assert (done.state, done.result) == (State.SUCCEEDED, None)
    assert (failed.state, failed.error, failed.error_type, failed.traceback) == (
        State.FAILED,
        "disk full",
        None,
        None,
    )


async def test_fail_with_an_exception_keeps_its_type_and_traceback(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        await jobs.update(ref.id, 0.5)
        try:
            raise ConnectionError("upstream gone")
        except ConnectionError as exc:
            info = await jobs.fail(ref.id, exc)
        stored = await jobs.get(ref.id)
        unraised = await jobs.fail((await jobs.create("b")).id, KeyError("k"))
    assert stored is not None
    for got in (info, stored):
        assert (got.state, got.error, got.error_type) == (State.FAILED, "upstream gone", "ConnectionError")
        assert got.traceback is not None
        assert "ConnectionError: upstream gone" in got.traceback
    assert (unraised.error_type, unraised.traceback) == ("KeyError", None)


async def test_cancel_of_a_waiting_external_job_is_at_once(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        assert await jobs.cancel(ref.id) is True
        assert await jobs.status(ref.id) is State.CANCELED
        with pytest.raises(JobStateError, match="canceled already"):
            await jobs.update(ref.id, 0.1)
        assert await jobs.cancel(ref.id) is False


async def test_cancel_of_a_running_external_job_reaches_its_reporter(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        await jobs.update(ref.id, 0.1)
        assert await jobs.cancel(ref.id) is True
        assert await jobs.status(ref.id) is State.CANCELING
        assert await jobs.cancel(ref.id) is False
        with pytest.raises(JobCanceledError):
            await jobs.update(ref.id, 0.2)
        info = await jobs.get(ref.id)
        assert info is not None
        assert (info.state, info.progress) == (State.CANCELED, 0.1)
        assert info.ended_at is not None
        with pytest.raises(JobStateError):
            await jobs.complete(ref.id)


@pytest.mark.parametrize("report", ["complete", "fail"])
async def test_an_end_after_a_cancel_raises_and_ends_canceled(make_store: MakeStore, report: str) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        await jobs.update(ref.id)
        await jobs.cancel(ref.id)
        end = jobs.complete(ref.id, 1) if report == "complete" else jobs.fail(ref.id, "no")
        with pytest.raises(JobCanceledError):
            await end
        info = await jobs.get(ref.id)
    assert info is not None
    assert (info.state, info.result, info.error) == (State.CANCELED, None, None)


async def test_stale_after_ends_a_silent_job_failed_with_job_lost_error(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a", stale_after=0.2)
        fresh = await jobs.create("b", stale_after=timedelta(hours=1))
        waiting = await jobs.create("c", stale_after=0.2)  # never updated: CREATED is not silent
        await jobs.update(ref.id, 0.5)
        await jobs.update(fresh.id, 0.5)
        info = await jobs.wait(ref.id, timeout=10)
        assert info is not None
        assert (info.state, info.error_type) == (State.FAILED, "JobLostError")
        assert info.error is not None
        assert "0.2" in info.error
        with pytest.raises(JobStateError):
            await jobs.update(ref.id, 0.6)
        assert await jobs.status(fresh.id) is State.RUNNING
        assert await jobs.status(waiting.id) is State.CREATED


async def test_reports_keep_a_job_alive_past_its_stale_after(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a", stale_after=0.5)
        for step in range(6):  # 0.6 s of reports, each well within 0.5 s of the last
            await jobs.update(ref.id, step / 10)
            await anyio.sleep(0.1)
        assert await jobs.status(ref.id) is State.RUNNING
        await jobs.complete(ref.id)


async def test_a_canceling_job_silent_past_stale_after_ends_canceled(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a", stale_after=0.2)
        await jobs.update(ref.id)
        await jobs.cancel(ref.id)
        info = await jobs.wait(ref.id, timeout=10)
    assert info is not None
    assert info.state is State.CANCELED


async def test_retry_of_a_finished_external_job_puts_it_back_for_its_reporter(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        await jobs.update(ref.id, 0.7, "went wrong")
        await jobs.fail(ref.id, "broke")
        again = await jobs.retry(ref.id)
        assert again.id == ref.id
        info = await jobs.get(ref.id)
        assert info is not None
        assert (info.state, info.attempts, info.progress, info.message, info.error) == (
            State.CREATED,
            2,
            0.0,
            None,
            None,
        )
        running = await jobs.update(ref.id, 0.1)
        assert (running.state, running.attempts) == (State.RUNNING, 2)
        with pytest.raises(JobStateError):
            await jobs.retry(ref.id)
        done = await jobs.complete(ref.id, "ok")
        assert (done.state, done.attempts) == (State.SUCCEEDED, 2)
        with pytest.raises(JobStateError):
            await jobs.retry(ref.id)  # succeeded: not failed or canceled


async def test_reports_on_unknown_ids_and_other_jobs_are_refused(make_store: MakeStore) -> None:
    async def ok(ctx: Any) -> None:
        pass

    async with JobManager(make_store()) as jobs:
        for call in (jobs.update("nope", 0.5), jobs.complete("nope"), jobs.fail("nope", "x")):
            with pytest.raises(JobNotFoundError):
                await call
        ref = await jobs.submit(ok)
        await jobs.wait(ref.id)
        with pytest.raises(JobStateError, match="not an external job"):
            await jobs.update(ref.id, 0.5)
        async with jobs.track("mine") as ctx:
            with pytest.raises(JobStateError, match="not an external job"):
                await jobs.complete(ctx.id)
        assert await jobs.status(ctx.id) is State.SUCCEEDED


@pytest.mark.parametrize(
    ("progress", "message", "error"),
    [
        (-0.1, None, ValueError),
        (1.5, None, ValueError),
        (math.nan, None, ValueError),
        (True, None, TypeError),
        ("0.5", None, TypeError),
        (None, 3, TypeError),
        (None, "a\x00b", ValueError),
        (None, "x" * 5000, ValueError),
    ],
)
async def test_an_invalid_update_changes_nothing(
    make_store: MakeStore, progress: Any, message: Any, error: type[Exception]
) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        await jobs.update(ref.id, 0.3, "ok")
        before = await jobs.get(ref.id)
        with pytest.raises(error):
            await jobs.update(ref.id, progress, message)
        assert await jobs.get(ref.id) == before


async def test_a_result_that_is_not_json_changes_nothing(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.create("a")
        with pytest.raises(TypeError):
            await jobs.complete(ref.id, {1, 2})
        with pytest.raises(ValueError):
            await jobs.complete(ref.id, math.inf)
        with pytest.raises(TypeError):
            await jobs.fail(ref.id, 42)  # type: ignore[arg-type]
        assert await jobs.status(ref.id) is State.CREATED


@pytest.mark.parametrize("stale_after", [0, -1, math.nan, math.inf, "1", True])
async def test_an_invalid_stale_after_is_refused_and_nothing_is_stored(
    make_store: MakeStore, stale_after: Any
) -> None:
    async with JobManager(make_store()) as jobs:
        with pytest.raises((TypeError, ValueError), match="stale_after"):
            await jobs.create("a", stale_after=stale_after)
        assert (await jobs.stats()).total == 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, ValueError),
        ({"name": None}, TypeError),
        ({"name": "a", "params": {1}}, TypeError),
        ({"name": "a", "message": 5}, TypeError),
        ({"name": "a", "labels": {"": "x"}}, ValueError),
        ({"name": "a", "id": ""}, ValueError),
    ],
)
async def test_invalid_create_arguments_are_refused(
    make_store: MakeStore, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    async with JobManager(make_store()) as jobs:
        with pytest.raises(error):
            await jobs.create(**kwargs)
        assert (await jobs.stats()).total == 0


async def test_a_duplicate_id_is_refused(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        await jobs.create("a", id="job")
        with pytest.raises(JobError):
            await jobs.create("b", id="job")
        info = await jobs.get("job")
    assert info is not None
    assert info.name == "a"


async def test_reports_need_an_open_manager(make_store: MakeStore) -> None:
    jobs = JobManager(make_store())
    with pytest.raises(ManagerClosedError):
        await jobs.create("a")
    async with jobs:
        ref = await jobs.create("a")
    for call in (jobs.update(ref.id, 0.5), jobs.complete(ref.id), jobs.fail(ref.id, "x"), jobs.create("b")):
        with pytest.raises(ManagerClosedError):
            await call


async def test_an_external_job_outlives_the_manager_that_created_it(make_store: MakeStore) -> None:
    store = make_store()
    async with JobManager(store) as first:
        ref = await first.create("a")
        await first.update(ref.id, 0.5)
    async with JobManager(store) as second:
        assert await second.status(ref.id) is State.RUNNING
        done = await second.complete(ref.id, "late")
    assert done.state is State.SUCCEEDED


async def test_events_waiters_and_hooks_see_external_jobs(make_store: MakeStore) -> None:
    heard: list[tuple[str, State | None]] = []

    def hook(event: HookEvent) -> None:
        heard.append((event.name, event.state))

    instrumentation.set_hooks([hook])
    try:
        async with JobManager(make_store()) as jobs:
            events = jobs.events()
            ref = await jobs.create("a")
            waited: list[Any] = []
            async with anyio.create_task_group() as tg:

                async def waiter() -> None:
                    waited.append(await jobs.wait(ref.id))

                tg.start_soon(waiter)
                await jobs.update(ref.id, 0.5, "half")
                await jobs.complete(ref.id, 1)
            seen = []
            with anyio.fail_after(5):
                async for event in events:
                    seen.append((event.state, event.progress))
                    if event.state.is_done:
                        break
            events.close()
    finally:
        instrumentation.set_hooks([])
    assert waited[0].state is State.SUCCEEDED
    assert seen == [(State.CREATED, 0.0), (State.RUNNING, 0.5), (State.SUCCEEDED, 0.5)]
    assert heard == [("anyjob.job_started", State.RUNNING), ("anyjob.job_succeeded", State.SUCCEEDED)]


async def test_as_completed_and_delete_take_external_jobs(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        refs = [await jobs.create(f"job{i}") for i in range(3)]
        async with anyio.create_task_group() as tg:

            async def report() -> None:
                for ref in reversed(refs):
                    await jobs.complete(ref.id, ref.name)

            tg.start_soon(report)
            names = [info.result async for info in jobs.as_completed([r.id for r in refs], timeout=10)]
        assert sorted(names) == ["job0", "job1", "job2"]
        await jobs.delete(refs[0].id)
        assert await jobs.get(refs[0].id) is None
        live = await jobs.create("live")
        with pytest.raises(JobStateError):
            await jobs.delete(live.id)


async def test_a_reporter_through_another_manager_is_seen_live_by_the_first(make_store: MakeStore) -> None:
    """A creates; B (over the same store) reports; A's events show the progress, then the end;
    A's cancel reaches B's reporter."""
    store = make_store()
    async with JobManager(store) as a, JobManager(store) as b:
        ref = await a.create("shared", {"n": 1})
        events = a.events(ref.id)
        await b.update(ref.id, 0.5, "from b")
        seen: list[tuple[State, float]] = []
        with anyio.fail_after(10):
            async for event in events:
                seen.append((event.state, event.progress))
                if event.progress == 0.5:
                    break
        await b.complete(ref.id, "b's result")
        info = await a.wait(ref.id, timeout=10)
        with anyio.fail_after(10):
            async for event in events:
                seen.append((event.state, event.progress))
                if event.state.is_done:
                    break
        events.close()
        assert info is not None
        assert (info.state, info.result) == (State.SUCCEEDED, "b's result")
        assert (State.RUNNING, 0.5) in seen
        assert seen[-1][0] is State.SUCCEEDED

        second = await a.create("canceled from a")
        await b.update(second.id, 0.1)
        assert await a.cancel(second.id) is True
        assert await b.cancel(second.id) is False  # one answer from every manager
        with pytest.raises(JobCanceledError):
            await b.update(second.id, 0.2)
        ended = await a.wait(second.id, timeout=10)
        assert ended is not None
        assert ended.state is State.CANCELED
