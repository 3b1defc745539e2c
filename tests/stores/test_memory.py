"""MemoryStore's own parts: the index and its invariant, and the in-process fast path."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import cast

import anyio
import pytest
from tests.stores.support import record

from anyjob import State
from anyjob.stores import JobQuery, MemoryStore, RecordUpdate, StoreChange

pytestmark = pytest.mark.anyio


async def test_the_index_stays_consistent_through_every_kind_of_change() -> None:
    store = MemoryStore()
    index = store._index
    for i in range(6):
        store.insert_now(record(f"j{i}", name="a" if i % 2 else "b"))
    index.check()
    one = store.record_now("j1")
    assert one is not None
    one.state = State.RUNNING
    one.started = 1.0
    store.reindex_later(one, State.CREATED)  # put off: settled by the next reader
    one.state = State.SUCCEEDED
    one.ended = 3.0
    store.reindex(one, State.RUNNING)  # both moves as one
    index.check()
    await store.apply(
        [
            RecordUpdate("j2", {"state": State.FAILED, "started": 1.0, "ended": 2.0}),
            RecordUpdate("j1", {"ended": 5.0}),  # a done record's end moves: its duration too
            RecordUpdate("j3", {"name": "renamed"}),
        ],
        origin="x",
    )
    index.check()
    assert await store.request_cancel("j4", origin="x") is State.CREATED
    index.check()
    stats = await store.statistics()
    assert stats.by_name == {"a": 2, "b": 3, "renamed": 1}
    assert stats.average_duration == (4.0 + 1.0) / 2
    assert (await store.statistics(name="renamed")).total == 1
    assert await store.delete_finished(10.0) == 2  # j1, j2; j4 was canceled just now
    assert await store.delete_finished(9e9) == 1
    index.check()
    assert [info.id for info in await store.query(JobQuery())] == ["j5", "j3", "j0"]
    stats = await store.statistics()
    assert (stats.total, stats.by_name, stats.average_duration) == (3, {"a": 1, "b": 1, "renamed": 1}, 0.0)


async def test_notify_reaches_only_other_origins() -> None:
    store = MemoryStore()
    mine = store.subscribe("a")
    rec = record("j1", owner="a")
    store.insert_now(rec)  # the owner's own insert: not reported to its feed
    store.notify(rec, "a")  # nobody else subscribed: nothing happens
    other = store.subscribe("b")
    rec.progress = 0.5
    store.notify(rec, "a")
    async with contextlib.aclosing(cast("AsyncGenerator[list[StoreChange], None]", aiter(other))) as batches:
        with anyio.fail_after(5):
            async for changes in batches:
                assert [(c.job_id, c.info and c.info.progress) for c in changes] == [("j1", 0.5)]
                break
    assert not mine._pending
    mine.close()
    other.close()
    assert store._feeds == []


def test_record_now_is_the_shared_record() -> None:
    store = MemoryStore()
    rec = record("j1")
    store.insert_now(rec)
    assert store.record_now("j1") is rec
    assert store.record_now("missing") is None
    assert store.state_now("j1") is State.CREATED
    info = store.get_now("j1")
    assert info is not None
    assert info.id == "j1"
