"""Deleting records over every store: ``delete`` of one done record, the final info deletions carry
to other origins' feeds (``delete`` and ``delete_finished``), and a cancel requested twice."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.stores.support import StoreKit, changes_until, record

from anyjob import State
from anyjob.stores import JobQuery, RecordUpdate, StoreChange

pytestmark = pytest.mark.anyio


def _deleted(job_id: str) -> Callable[[list[StoreChange]], bool]:
    return lambda seen: any(c.job_id == job_id and c.info is None for c in seen)


async def test_delete_removes_only_a_done_record_and_returns_its_state(kit: StoreKit) -> None:
    store = kit.store()
    await store.open()
    await store.insert(record("done", state=State.FAILED, started=1.0, ended=2.0, labels={"k": "v"}))
    await store.insert(record("waiting"))
    await store.insert(record("running", state=State.RUNNING, started=1.0))
    await store.insert(record("canceling", state=State.CANCELING, started=1.0))
    other = kit.new()
    for job_id, state in [
        ("waiting", State.CREATED),
        ("running", State.RUNNING),
        ("canceling", State.CANCELING),
    ]:
        assert await other.delete(job_id, origin="manager-b") is state  # not done: kept
        assert await store.get(job_id) is not None
    assert await other.delete("done", origin="manager-b") is State.FAILED
    assert await store.get("done") is None
    assert await store.delete("done", origin="manager-b") is None  # gone: unknown now
    assert await store.delete("missing", origin="manager-b") is None
    assert await store.query(JobQuery(labels={"k": "v"})) == []
    stats = await store.statistics()
    assert (stats.total, stats.by_state[State.FAILED], stats.average_duration) == (3, 0, 0.0)
    assert stats.by_name == {"job": 3}
    # A deleted id may be used again.
    await store.insert(record("done"))
    assert (await other.statistics()).total == 4


async def test_a_deletion_reaches_other_feeds_with_the_final_info(kit: StoreKit) -> None:
    mine = kit.store()
    other = kit.new()  # another process, for a durable store
    await mine.open()
    feed = mine.subscribe("manager-a")
    await other.insert(record("j1", owner="manager-b", state=State.RUNNING, started=1.0))
    await other.apply(
        [
            RecordUpdate(
                "j1", {"state": State.SUCCEEDED, "ended": 3.0, "result": {"rows": [1]}, "progress": 1.0}
            )
        ],
        origin="manager-b",
    )
    assert await other.delete("j1", origin="manager-b") is State.SUCCEEDED
    # Read after the end and the deletion: the feed still tells how the job ended.
    seen = await changes_until(feed, _deleted("j1"))
    gone = next(c for c in seen if c.info is None)
    assert (gone.job_id, gone.cancel_requested, gone.owner) == ("j1", False, "")
    assert gone.final is not None
    assert (gone.final.id, gone.final.state, gone.final.result, gone.final.progress) == (
        "j1",
        State.SUCCEEDED,
        {"rows": [1]},
        1.0,
    )
    assert gone.final.duration == 2.0
    feed.close()


async def test_delete_finished_reaches_every_feed_with_the_final_infos(kit: StoreKit) -> None:
    mine = kit.store()
    other = kit.new()
    await mine.open()
    feed = mine.subscribe("manager-a")
    await mine.insert(record("a", state=State.CANCELED, ended=5.0))  # its own, but deleted by cleanup
    await other.insert(record("b", owner="manager-b", state=State.FAILED, ended=6.0, error="boom"))
    assert await other.delete_finished(10.0) == 2
    seen = await changes_until(feed, lambda seen: _deleted("a")(seen) and _deleted("b")(seen))
    finals = {c.job_id: c.final for c in seen if c.info is None}
    assert finals["a"] is not None
    assert finals["b"] is not None
    assert (finals["a"].state, finals["b"].state, finals["b"].error) == (State.CANCELED, State.FAILED, "boom")
    feed.close()


async def test_a_deletion_is_not_reported_to_its_own_origin(kit: StoreKit) -> None:
    mine = kit.store()
    await mine.open()
    feed = mine.subscribe("manager-a")
    await mine.insert(record("mine", state=State.SUCCEEDED, ended=1.0))
    assert await mine.delete("mine", origin="manager-a") is State.SUCCEEDED
    await kit.new().insert(record("marker", owner="manager-b"))  # something it is told of
    seen = await changes_until(feed, lambda seen: any(c.job_id == "marker" for c in seen))
    assert [c.job_id for c in seen] == ["marker"]
    feed.close()


async def test_a_second_cancel_request_of_a_running_record_answers_canceling(kit: StoreKit) -> None:
    store = kit.store()
    await store.insert(record("running", state=State.RUNNING, started=1.0))
    other = kit.new()
    assert await other.request_cancel("running", origin="manager-b") is State.RUNNING
    assert await other.request_cancel("running", origin="manager-b") is State.CANCELING
    assert await store.request_cancel("running", origin="manager-c") is State.CANCELING
    stored = await store.get_record("running")
    assert stored is not None
    assert (stored.state, stored.cancel_requested) == (State.RUNNING, True)
    # Its owner stops it (CANCELING), ends it; a retry clears the request: asked again, it is RUNNING.
    await store.apply([RecordUpdate("running", {"state": State.CANCELING})], origin="manager-a")
    assert await other.request_cancel("running", origin="manager-b") is State.CANCELING
    await store.apply(
        [
            RecordUpdate("running", {"state": State.CANCELED, "ended": 2.0}),
            RecordUpdate("running", {"state": State.RUNNING, "cancel_requested": False}),
        ],
        origin="manager-a",
    )
    assert await other.request_cancel("running", origin="manager-b") is State.RUNNING
