"""GET /api/events in-process on asyncio and trio: framing, ids, resume, snapshots, coalescing."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from tests.web.sse_support import open_stream
from tests.web.web_support import TIMEOUT, register_all

from anyjob import Context, JobManager, State
from anyjob.web import create_app
from anyjob.web._stream import _coalesced

pytestmark = pytest.mark.anyio


async def steps(ctx: Context) -> None:
    count = int(ctx.params)
    for step in range(1, count + 1):
        ctx.set_progress(step / count, f"step {step}")
        await anyio.lowlevel.checkpoint()


def manager() -> JobManager:
    jobs = register_all(JobManager(shutdown_timeout=0))
    jobs.register(steps, "steps")
    return jobs


def done_event(job_id):
    return lambda data: data["job_id"] == job_id and data["state"] in {"succeeded", "failed", "canceled"}


async def test_the_stream_starts_with_its_headers_and_a_snapshot_of_the_active_jobs():
    async with manager() as jobs:
        waiting = await jobs.submit("echo", delay=3600)
        async with open_stream(create_app(jobs)) as stream:
            assert stream.status == 200
            assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert stream.headers["cache-control"] == "no-cache"
            assert stream.headers["x-accel-buffering"] == "no"
            snapshot = await stream.frame()
            assert snapshot.event == "snapshot"
            assert snapshot.id is not None
            assert [job["id"] for job in snapshot.data["jobs"]] == [waiting.id]
            info = await jobs.get(waiting.id)
            assert snapshot.data["jobs"][0] == info.to_dict()


async def test_events_come_in_order_with_increasing_ids():
    async with manager() as jobs:
        async with open_stream(create_app(jobs)) as stream:
            snapshot = await stream.frame()
            ref = await jobs.submit("steps", 3)
            frames = await stream.event_until(done_event(ref.id))
            ids = [snapshot.id] + [frame.id for frame in frames]
            assert ids == sorted(ids)
            assert len(set(ids)) == len(ids)
            assert frames[0].data["state"] == "created"
            assert frames[-1].data["state"] == "succeeded"
            assert set(frames[-1].data) == {"job_id", "state", "progress", "message", "at"}
            progress = [frame.data["progress"] for frame in frames if frame.data["state"] == "running"]
            assert progress == sorted(progress)


async def test_keep_alive_comments_flow_while_nothing_happens():
    async with manager() as jobs:
        async with open_stream(create_app(jobs, keepalive=0.05)) as stream:
            assert (await stream.frame()).event == "snapshot"
            assert (await stream.frame(skip_comments=False)).comment == "keep-alive"
            assert (await stream.frame(skip_comments=False)).comment == "keep-alive"


async def test_a_disconnect_ends_the_response_at_once():
    async with manager() as jobs:
        app = create_app(jobs, keepalive=3000)
        async with open_stream(app) as stream:
            await stream.frame()
            stream.disconnect()
            with anyio.fail_after(5):  # far below the keep-alive: nothing but the disconnect wakes it
                await stream.finished.wait()
            assert stream.ended_body
        async with open_stream(app) as again:  # the hub goes on serving others
            assert (await again.frame()).event == "snapshot"


async def test_last_event_id_resumes_with_exactly_the_missed_events():
    async with manager() as jobs:
        app = create_app(jobs)
        async with open_stream(app) as stream:
            await stream.frame()
            first = await jobs.submit("steps", 2)
            frames = await stream.event_until(done_event(first.id))
            last = frames[-1].id
        second = await jobs.submit("steps", 2)  # while nobody listens
        await jobs.wait(second.id)
        async with open_stream(app, headers={"Last-Event-ID": str(last)}) as resumed:
            frames = await resumed.event_until(done_event(second.id))
            assert all(frame.event == "message" for frame in frames)
            assert {frame.data["job_id"] for frame in frames} == {second.id}
            assert frames[0].data["state"] == "created"
            assert frames[0].id > last
            assert [frame.id for frame in frames] == sorted({frame.id for frame in frames})


async def test_a_gap_larger_than_the_replay_buffer_gets_a_fresh_snapshot():
    async with manager() as jobs:
        app = create_app(jobs, replay=3)
        async with open_stream(app) as keeper:  # keeps the hub pulling while the other is away
            await keeper.frame()
            async with open_stream(app) as stream:
                last = (await stream.frame()).id
            waiting = await jobs.submit("echo", delay=3600)
            ref = await jobs.submit("steps", 6)
            await jobs.wait(ref.id)
            while True:  # until the keeper saw the end, in an event or (a small ring) a snapshot
                frame = await keeper.frame()
                if frame.event == "message" and done_event(ref.id)(frame.data):
                    break
                if frame.event == "snapshot" and ref.id not in {job["id"] for job in frame.data["jobs"]}:
                    break
            async with open_stream(app, headers={"Last-Event-ID": str(last)}) as resumed:
                snapshot = await resumed.frame()
                assert snapshot.event == "snapshot"
                assert snapshot.id > last
                assert [job["id"] for job in snapshot.data["jobs"]] == [waiting.id]
                await jobs.submit("echo")
                after = await resumed.frame()  # its events, or (three is a small ring) a new snapshot
                assert after.id > snapshot.id


@pytest.mark.parametrize("last_event_id", ["garbage", "-3", "999999999999999999999", "0"])
async def test_an_unknown_last_event_id_gets_a_snapshot(last_event_id):
    async with manager() as jobs:
        app = create_app(jobs)
        async with open_stream(app, headers={"Last-Event-ID": last_event_id}) as stream:
            assert (await stream.frame()).event == "snapshot"


async def test_the_id_query_filters_the_stream():
    async with manager() as jobs:
        app = create_app(jobs)
        wanted = await jobs.submit("hang")
        async with open_stream(app, query=f"id={wanted.id}") as stream:
            snapshot = await stream.frame()
            assert [job["id"] for job in snapshot.data["jobs"]] == [wanted.id]
            other = await jobs.submit("steps", 3)
            await jobs.wait(other.id)
            await jobs.cancel(wanted.id)
            frames = await stream.event_until(done_event(wanted.id))
            assert {frame.data["job_id"] for frame in frames} == {wanted.id}
        async with open_stream(app, query="id=") as refused:
            assert refused.status == 422


async def test_a_slow_client_gets_progress_coalesced_and_every_state_change():
    async with manager() as jobs:
        app = create_app(jobs)
        async with open_stream(app) as fast, open_stream(app) as slow:
            await fast.frame()
            await slow.frame()
            slow.hold()
            ref = await jobs.submit("steps", 50)
            fast_frames = await fast.event_until(done_event(ref.id))
            slow.release()
            slow_frames = await slow.event_until(done_event(ref.id))
            produced = 53  # created, running, 50 reports, succeeded
            assert len(slow_frames) <= len(fast_frames) < produced
            states = [frame.data["state"] for frame in slow_frames]
            assert states[0] == "created"
            assert "running" in states
            assert states[-1] == "succeeded"
            assert [frame.id for frame in slow_frames] == sorted({frame.id for frame in slow_frames})
            assert [f.data["progress"] for f in fast_frames if f.data["state"] == "running"][-1] == 1.0


async def test_the_stream_ends_when_the_manager_closes():
    jobs = manager()
    app = create_app(jobs)
    ready = anyio.Event()
    ended = anyio.Event()

    async def listen() -> None:
        async with open_stream(app) as stream:
            await stream.frame()
            ready.set()
            with anyio.fail_after(TIMEOUT):
                await stream.finished.wait()  # without a disconnect: the app ended the response
            assert stream.ended_body
            ended.set()

    async with anyio.create_task_group() as tg:
        async with jobs:
            tg.start_soon(listen)
            await ready.wait()
        with anyio.fail_after(TIMEOUT):
            await ended.wait()
    async with open_stream(app) as after:
        assert after.status == 503


async def test_an_owner_sees_only_their_jobs_events():
    async def by_header(request):
        return request.headers.get("x-user")

    async with manager() as jobs:
        app = create_app(jobs, auth=by_header, owner_label="owner")
        async with open_stream(app, headers={"x-user": "bob"}) as bob:
            assert (await bob.frame()).data == {"jobs": []}
            alices = await jobs.submit("echo", labels={"owner": "alice"})
            await jobs.wait(alices.id)
            bobs = await jobs.submit("echo", labels={"owner": "bob"})
            frames = await bob.event_until(done_event(bobs.id))
            assert {frame.data["job_id"] for frame in frames} == {bobs.id}
        async with open_stream(app) as nobody:
            assert nobody.status == 401


def test_coalescing_keeps_state_changes_and_the_latest_progress_of_each_state():
    from datetime import UTC, datetime

    from anyjob import JobEvent

    now = datetime.now(UTC)

    def event(job, state, progress):
        return JobEvent(job, state, progress, None, now)

    batch = [
        (seq, event, b"")
        for seq, event in enumerate(
            [
                event("a", State.CREATED, 0.0),
                event("a", State.RUNNING, 0.0),
                event("b", State.RUNNING, 0.1),
                event("a", State.RUNNING, 0.5),
                event("b", State.RUNNING, 0.2),
                event("a", State.RUNNING, 0.9),
                event("a", State.SUCCEEDED, 1.0),
                event("b", State.RUNNING, 0.3),
            ]
        )
    ]
    kept = [(seq, e.job_id, e.state, e.progress) for seq, e, _ in _coalesced(batch)]
    assert kept == [
        (0, "a", State.CREATED, 0.0),
        (5, "a", State.RUNNING, 0.9),
        (6, "a", State.SUCCEEDED, 1.0),
        (7, "b", State.RUNNING, 0.3),
    ]


async def test_an_id_of_another_server_gets_a_snapshot_not_a_replay():
    """Two apps stand for two worker processes: one's Last-Event-ID is never a cursor in the other."""
    async with manager() as jobs:
        one, other = create_app(jobs), create_app(jobs)
        async with open_stream(one) as stream, open_stream(other) as keeper:
            await stream.frame()
            await keeper.frame()
            ref = await jobs.submit("steps", 2)
            last = (await stream.event_until(done_event(ref.id)))[-1].id
            await keeper.event_until(done_event(ref.id))  # the other's numbers went on as well
        async with open_stream(other, headers={"Last-Event-ID": str(last)}) as resumed:
            assert (await resumed.frame()).event == "snapshot"
        async with open_stream(one, headers={"Last-Event-ID": str(last)}) as resumed:
            await jobs.submit("echo")
            assert (await resumed.frame()).event == "message"  # its own server resumes it


async def test_events_buffered_while_nobody_listened_are_never_sent_after_a_snapshot():
    async with manager() as jobs:
        app = create_app(jobs)
        async with open_stream(app) as stream:
            await stream.frame()  # the hub subscribed
        ended = [await jobs.submit("steps", 3) for _ in range(20)]  # while nobody listens
        for ref in ended:
            await jobs.wait(ref.id)
        await jobs.delete(ended[0].id)
        async with open_stream(app) as fresh:
            assert (await fresh.frame()).event == "snapshot"
            new = await jobs.submit("echo")
            frame = await fresh.frame()
            assert frame.event == "message"
            assert frame.data["job_id"] == new.id  # not a stale event of a job that ended before


async def test_two_hubs_numbering_alike_never_take_each_others_ids():
    """Workers started in the same microsecond number their events alike: the token tells them apart."""
    from anyjob.web._stream import _Hub

    async with manager() as jobs:
        one, other = _Hub(jobs.events(), 10), _Hub(jobs.events(), 10)
        other.last = one.last
        if other.token == one.token:  # one chance in 65,536
            other.token ^= 1
        wire = one.wire_id(one.last)
        assert one.number_of(str(wire)) == one.last
        assert other.number_of(str(wire)) == -1
        assert one.wire_id(one.last + 1) > wire  # ids still grow
        assert one.number_of("garbage") == one.number_of(None) == -1
