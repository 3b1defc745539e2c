"""``jobs.track(...)``: a block of the caller's own code recorded as a job, over every store."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import MakeStore
from tests.manager.test_adversarial import check_closed

from anyjob import (
    Context,
    JobError,
    JobManager,
    JobStateError,
    ManagerClosedError,
    State,
    instrumentation,
)
from anyjob.instrumentation import HookEvent

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_a_block_that_exits_normally_succeeds_with_its_result(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        async with jobs.track("import", {"file": "a.csv"}, labels={"team": "data"}) as ctx:
            assert isinstance(ctx, Context)
            assert (ctx.name, ctx.params, dict(ctx.labels)) == ("import", {"file": "a.csv"}, {"team": "data"})
            assert await jobs.status(ctx.id) is State.RUNNING
            ctx.set_progress(0.5, "halfway")
            running = await jobs.get(ctx.id)
            ctx.set_result({"rows": 3})
        info = await jobs.get(ctx.id)
    assert running is not None
    assert (running.state, running.progress, running.message) == (State.RUNNING, 0.5, "halfway")
    assert info is not None
    assert (info.state, info.result, info.attempts, info.progress) == (State.SUCCEEDED, {"rows": 3}, 1, 0.5)
    assert info.started_at is not None
    assert info.ended_at is not None
    assert info.updated_at == info.ended_at
    assert info.traceback is None
    await check_closed(jobs)


async def test_a_block_that_raises_fails_and_the_error_goes_on(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        with pytest.raises(ValueError, match="bad row"):
            async with jobs.track("import") as ctx:
                raise ValueError("bad row")
        info = await jobs.get(ctx.id)
    assert info is not None
    assert (info.state, info.error, info.error_type) == (State.FAILED, "bad row", "ValueError")
    assert info.traceback is not None
    assert "raise ValueError" in info.traceback
    assert info.traceback.rstrip().endswith("ValueError: bad row")


async def test_cancel_by_id_cancels_the_block_and_the_async_with_absorbs_it(make_store: MakeStore) -> None:
    after: list[str] = []
    async with JobManager(make_store()) as jobs:
        async with jobs.track("long") as ctx:
            assert await jobs.cancel(ctx.id) is True
            with anyio.CancelScope(
                shield=True
            ):  # status() is a checkpoint: the cancellation would land there
                assert await jobs.status(ctx.id) is State.CANCELING
            await anyio.sleep_forever()  # cancelled here
        after.append("went on")
        info = await jobs.wait(ctx.id, timeout=5)
        assert await jobs.cancel(ctx.id) is False
    assert after == ["went on"]
    assert info is not None
    assert info.state is State.CANCELED


async def test_cancel_from_another_task_reaches_the_block(make_store: MakeStore) -> None:
    entered = anyio.Event()
    ids: list[str] = []
    async with JobManager(make_store()) as jobs:

        async def block() -> None:
            async with jobs.track("long") as ctx:
                ids.append(ctx.id)
                entered.set()
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(block)
            await entered.wait()
            assert await jobs.cancel(ids[0]) is True
        info = await jobs.wait(ids[0], timeout=5)
    assert info is not None
    assert info.state is State.CANCELED


async def test_the_callers_own_cancellation_is_recorded_and_goes_on(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        with anyio.CancelScope() as scope:
            async with jobs.track("long") as ctx:
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        info = await jobs.get(ctx.id)
    assert info is not None
    assert info.state is State.CANCELED


async def test_a_block_runs_in_the_callers_task_whatever_max_concurrency(make_store: MakeStore) -> None:
    release = anyio.Event()

    async def hold(ctx: Context) -> None:
        await release.wait()

    async with JobManager(make_store(), max_concurrency=1) as jobs:
        held = await jobs.submit(hold)
        async with jobs.track("beside") as ctx:  # the only slot is taken: the block runs anyway
            pass
        assert await jobs.status(ctx.id) is State.SUCCEEDED
        release.set()
        await jobs.wait(held.id)


async def test_retry_of_a_tracked_job_is_refused(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        with pytest.raises(RuntimeError):
            async with jobs.track("once") as ctx:
                raise RuntimeError("no")
        with pytest.raises(JobStateError, match="tracked block"):
            await jobs.retry(ctx.id)
        info = await jobs.get(ctx.id)
    assert info is not None
    assert info.state is State.FAILED


async def test_a_block_used_twice_is_refused_and_nothing_changes(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        block = jobs.track("once")
        async with block as ctx:
            pass
        with pytest.raises(RuntimeError, match="entered already"):
            async with block:
                raise AssertionError  # pragma: no cover - never entered
        assert (await jobs.stats()).total == 1
        assert await jobs.status(ctx.id) is State.SUCCEEDED


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, ValueError),
        ({"name": 3}, TypeError),
        ({"name": "x", "params": {1, 2}}, TypeError),
        ({"name": "x", "labels": {"k": 1}}, TypeError),
        ({"name": "x", "id": "a\x00b"}, ValueError),
    ],
)
async def test_bad_arguments_are_refused_at_the_call(
    make_store: MakeStore, kwargs: dict, error: type
) -> None:  # type: ignore[type-arg]
    async with JobManager(make_store()) as jobs:
        with pytest.raises(error):
            jobs.track(**kwargs)
        assert (await jobs.stats()).total == 0


async def test_an_id_in_use_is_refused_when_entering(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        async with jobs.track("first", id="job"):
            with pytest.raises(JobError, match="already exists"):
                async with jobs.track("second", id="job"):
                    raise AssertionError  # pragma: no cover - never entered
        info = await jobs.get("job")
    assert info is not None
    assert (info.name, info.state) == ("first", State.SUCCEEDED)


async def test_entering_before_or_after_the_manager_is_open_is_refused(make_store: MakeStore) -> None:
    jobs = JobManager(make_store())
    block = jobs.track("early")
    with pytest.raises(ManagerClosedError):
        async with block:
            raise AssertionError  # pragma: no cover - never entered
    async with jobs:
        pass
    with pytest.raises(ManagerClosedError):
        async with jobs.track("late"):
            raise AssertionError  # pragma: no cover - never entered


async def test_events_and_hooks_see_a_block_like_any_job(make_store: MakeStore) -> None:
    heard: list[tuple[str, State | None]] = []

    def hook(event: HookEvent) -> None:
        heard.append((event.name, event.state))

    instrumentation.set_hooks([hook])
    try:
        async with JobManager(make_store()) as jobs:
            events = jobs.events()
            async with jobs.track("seen") as ctx:
                ctx.set_progress(0.25)
            seen = []
            with anyio.fail_after(5):
                async for event in events:
                    seen.append((event.state, event.progress))
                    if event.state.is_done:
                        break
            events.close()
    finally:
        instrumentation.set_hooks([])
    assert seen[0][0] in {State.CREATED, State.RUNNING}
    assert (State.RUNNING, 0.25) in seen
    assert seen[-1] == (State.SUCCEEDED, 0.25)
    assert ("anyjob.job_started", State.RUNNING) in heard
    assert ("anyjob.job_succeeded", State.SUCCEEDED) in heard


async def test_a_closing_manager_cancels_a_block_running_in_another_task(make_store: MakeStore) -> None:
    entered = anyio.Event()
    outcome: list[str] = []
    async with anyio.create_task_group() as tg:
        async with JobManager(make_store(), shutdown_timeout=0) as jobs:

            async def block() -> None:
                async with jobs.track("long"):
                    entered.set()
                    await anyio.sleep_forever()
                outcome.append("absorbed")

            tg.start_soon(block)
            await entered.wait()
        stats = await jobs.stats()
    assert outcome == ["absorbed"]
    assert stats.by_state[State.CANCELED] == 1


async def test_wait_from_another_task_sees_the_end(make_store: MakeStore) -> None:
    results: list[object] = []
    async with JobManager(make_store()) as jobs, anyio.create_task_group() as tg:
        async with jobs.track("watched") as ctx:

            async def waiter() -> None:
                info = await jobs.wait(ctx.id)
                results.append(None if info is None else (info.state, info.result))

            tg.start_soon(waiter)
            await anyio.lowlevel.checkpoint()
            ctx.set_result("done")
    assert results == [(State.SUCCEEDED, "done")]


async def test_a_closing_manager_lets_a_running_block_finish_within_shutdown_timeout(
    make_store: MakeStore,
) -> None:
    """Leaving the manager waits for a block running in another task as for a running job (it was
    canceled at once: shutdown_timeout applied only to jobs the workers ran)."""
    entered = anyio.Event()
    release = anyio.Event()
    ids: list[str] = []
    async with anyio.create_task_group() as tg:
        async with JobManager(make_store(), shutdown_timeout=30) as jobs:

            async def block() -> None:
                async with jobs.track("short") as ctx:
                    ids.append(ctx.id)
                    entered.set()
                    await release.wait()

            tg.start_soon(block)
            await entered.wait()
            tg.start_soon(_set_soon, release)
        info = await jobs.get(ids[0])
    assert info is not None
    assert info.state is State.SUCCEEDED


async def _set_soon(event: anyio.Event) -> None:
    await anyio.lowlevel.checkpoint()
    event.set()
