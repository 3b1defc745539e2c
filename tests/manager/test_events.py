"""Event streams: per-job order, filtering, coalesced progress for slow consumers, bounds, closing."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import MakeStore, ok

from anyjob import Context, JobError, JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_events_in_order_per_job_and_filtered(make_store: MakeStore) -> None:
    async def steps(ctx: Context) -> None:
        for i in range(3):
            ctx.set_progress((i + 1) / 3, f"step {i + 1}")
            await anyio.lowlevel.checkpoint()

    seen: list[tuple[State, float, str | None]] = []
    ended = anyio.Event()
    async with JobManager(make_store()) as jobs:
        all_events = jobs.events()
        ref = await jobs.submit(steps)
        one = jobs.events(ref.id)
        other = await jobs.submit(ok)

        async def follow() -> None:
            async for event in one:
                assert event.job_id == ref.id
                assert event.at.tzinfo is not None
                seen.append((event.state, event.progress, event.message))
                if event.state.is_done:
                    ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await jobs.wait(ref.id)
            await jobs.wait(other.id)
            with anyio.fail_after(5):
                await ended.wait()  # the follower has had the end
            one.close()
    assert seen[0][0] is State.RUNNING  # subscribed after submit: CREATED happened before
    assert seen[-1][0] is State.SUCCEEDED
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress)
    collected = [event async for event in all_events]  # ended when the manager closed
    assert {event.job_id for event in collected} == {ref.id, other.id}
    assert [e.state for e in collected if e.job_id == other.id] == [
        State.CREATED,
        State.RUNNING,
        State.SUCCEEDED,
    ]


async def test_slow_consumer_gets_coalesced_progress_and_never_blocks(make_store: MakeStore) -> None:
    async def chatty(ctx: Context) -> str:
        for i in range(1, 1001):
            ctx.set_progress(i / 1000, f"{i}")
            if i % 100 == 0:
                await anyio.lowlevel.checkpoint()
        return "done"

    async with JobManager(make_store()) as jobs:
        events = jobs.events()
        ref = await jobs.submit(chatty)
        info = await jobs.wait(ref.id)  # the job finished although nobody read the events
        assert info is not None
        assert info.state is State.SUCCEEDED
    received = [event async for event in events]
    assert len(received) < 20
    assert received[0].state is State.CREATED
    assert received[-1].state is State.SUCCEEDED
    assert received[-1].progress == 1.0
    progress = [e.progress for e in received]
    assert progress == sorted(progress)


async def test_events_after_close_are_refused(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        pass
    with pytest.raises(JobError):
        jobs.events()


async def test_event_buffer_is_bounded(make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from anyjob import _events

    # The bound is 100,000 events: lowered here (no constructor argument sets it).
    monkeypatch.setattr(_events, "MAX_BUFFERED", 10)
    async with JobManager(make_store()) as jobs:
        stream = jobs.events()
        refs = [await jobs.submit(ok, i) for i in range(20)]  # 60 state changes, nobody reading
        for ref in refs:
            await jobs.wait(ref.id)
    received = [event async for event in stream]
    assert len(received) == 10
    assert stream.dropped == 50
    assert received[-1].state is State.SUCCEEDED  # the newest are kept


async def test_pending_counts_the_events_ready_to_take() -> None:
    async with JobManager() as jobs:
        stream = jobs.events()
        assert stream.pending == 0
        ref = await jobs.submit(ok)
        await jobs.wait(ref.id)
        buffered = stream.pending
        assert buffered >= 2  # at least RUNNING and SUCCEEDED
        await stream.__anext__()
        assert stream.pending == buffered - 1
        stream.close()
