"""``insert_many``: many records in one write, all or none, over every store that has it."""

from __future__ import annotations

from typing import Any

import pytest
from tests.stores.support import StoreKit, changes_until, record

from anyjob import JobError, State, StoreError
from anyjob.stores import JobQuery, Store
from anyjob.stores._base import InsertMany, RecordUpdate
from anyjob.stores._grouped import InsertedError
from anyjob.stores._sql import SQLStore

pytestmark = pytest.mark.anyio

_POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
#: The kinds of store that have insert_many (the suite's protocol-only store has not).
with_insert_many = pytest.mark.parametrize("kit", ["memory", "sqlite", _POSTGRES], indirect=True)
_T = 1_700_000_000.0  # when support.record() creates its records
sql_only = pytest.mark.parametrize("kit", ["sqlite", _POSTGRES], indirect=True)


def _batch_store(kit: StoreKit) -> Any:
    """The kit's store, which has ``insert_many``."""
    store = kit.store()
    assert isinstance(store, InsertMany)
    return store


async def test_a_store_without_it_is_still_a_store(kit: StoreKit) -> None:
    store = kit.store()
    assert isinstance(store, Store)
    assert isinstance(store, InsertMany) is (kit.kind != "protocol")  # the test suite's DelegatingStore


@with_insert_many
async def test_all_are_stored_with_their_labels(kit: StoreKit) -> None:
    store = _batch_store(kit)
    await store.open()
    batch = [
        record(f"j{i}", labels={"n": str(i)}, params={"i": i}, created=1_700_000_000.0 + i) for i in range(5)
    ]
    await store.insert_many(batch)
    other = kit.new()
    for i in range(5):
        copy = await other.get_record(f"j{i}")
        assert copy is not None
        assert (copy.state, dict(copy.labels), copy.params) == (State.CREATED, {"n": str(i)}, {"i": i})
    listed = await other.query(JobQuery(labels={"n": "3"}))
    assert [info.id for info in listed] == ["j3"]
    assert [info.id for info in await other.query(JobQuery())] == [f"j{i}" for i in reversed(range(5))]


@with_insert_many
@pytest.mark.parametrize("taken", ["stored", "twice"])
async def test_one_taken_id_stores_none(kit: StoreKit, taken: str) -> None:
    store = _batch_store(kit)
    await store.open()
    if taken == "stored":
        await store.insert(record("j1"))
        batch = [record("j0"), record("j1"), record("j2")]
    else:
        batch = [record("j0"), record("j1"), record("j2"), record("j1")]
    with pytest.raises(JobError, match="'j1' already exists") as caught:
        await store.insert_many(batch)
    assert not isinstance(caught.value, StoreError)
    assert caught.value.job_id == "j1"
    other = kit.new()
    assert await other.get("j0") is None
    assert await other.get("j2") is None
    assert len(await other.query(JobQuery())) == (1 if taken == "stored" else 0)


@with_insert_many
async def test_an_empty_batch_writes_nothing(kit: StoreKit) -> None:
    store = _batch_store(kit)
    await store.open()
    await store.insert_many([])
    assert await kit.new().query(JobQuery()) == []


@with_insert_many
async def test_other_origins_are_told_of_each(kit: StoreKit) -> None:
    store = _batch_store(kit)
    await store.open()
    watcher = kit.new()
    await watcher.open()
    feed = watcher.subscribe("manager-b")
    try:
        await store.insert_many([record(f"j{i}") for i in range(3)])
        ids = {f"j{i}" for i in range(3)}
        seen = await changes_until(feed, lambda changes: ids <= {change.job_id for change in changes})
        assert {change.job_id for change in seen} >= ids
    finally:
        feed.close()


@sql_only
async def test_sql_stores_write_a_batch_in_one_transaction(kit: StoreKit) -> None:
    store = kit.store()
    assert isinstance(store, SQLStore)
    await store.open()
    calls: list[int] = []
    write = store._write

    def counted(conn: Any, records: Any, told: Any, updates: Any, origin: str) -> list[bool]:
        calls.append(len(records))
        return write(conn, records, told, updates, origin)

    store._write = counted  # type: ignore[method-assign]
    await store.insert_many([record(f"j{i}", labels={"k": "v"}) for i in range(100)])
    assert calls == [100]

    def logged(conn: Any) -> list[tuple[str, float]]:
        rows = conn.execute("SELECT job_id, at FROM anyjob_changes ORDER BY seq").fetchall()
        return [(row["job_id"], row["at"]) for row in rows]

    rows = await store._run("read the change log", logged, wrote=False)
    assert [job_id for job_id, _at in rows] == [f"j{i}" for i in range(100)]
    assert len({at for _job_id, at in rows}) == 1  # one statement, one time: one transaction
    assert len(await kit.new().query(JobQuery(labels={"k": "v"}, limit=1000))) == 100


@sql_only
async def test_a_batch_whose_commit_was_lost_is_found_written(kit: StoreKit) -> None:
    store = kit.store()
    assert isinstance(store, SQLStore)
    await store.open()
    batch = [record(f"j{i}", owner="a") for i in range(3)]
    await store.insert_many(batch)
    # What SQLStore._run runs on a new connection after a COMMIT whose answer was lost:
    # the rows there are these records, so the batch was written.
    told = {"a": [job.id for job in batch]}
    await store._run("insert 3 jobs", store._write_again, batch, told, (), "a")
    others = [record("j9", owner="b"), record("j1", owner="b")]
    with pytest.raises(JobError, match="'j1' already exists"):
        await store._run("insert 2 jobs", store._write_again, others, {"b": ["j9", "j1"]}, (), "b")
    assert await store.get("j9") is None
    assert len(await kit.new().query(JobQuery())) == 3


@sql_only
async def test_write_adds_records_and_applies_updates_in_one_transaction(kit: StoreKit) -> None:
    store = kit.store()
    assert isinstance(store, SQLStore)
    await store.open()
    await store.insert(record("old", owner="a"))
    claim = RecordUpdate(
        "old", {"state": State.RUNNING, "started": 2.0}, frozenset({State.CREATED}), owner="a"
    )
    refused = RecordUpdate("missing", {"state": State.RUNNING}, frozenset({State.CREATED}))
    applied = await store.write(
        [record("new1", owner="a"), record("new2", owner="a")], [claim, refused], origin="a"
    )
    assert applied == [True, False]
    reader = kit.new()
    states = {job_id: info.state for job_id in ("old", "new1", "new2") if (info := await reader.get(job_id))}
    assert states == {"old": State.RUNNING, "new1": State.CREATED, "new2": State.CREATED}
    assert await store.write([], [], origin="a") == []
    # A taken id: nothing of the transaction is written, the updates neither.
    end = RecordUpdate("old", {"state": State.SUCCEEDED, "ended": 3.0}, frozenset({State.RUNNING}), owner="a")
    with pytest.raises(JobError, match="'new1' already exists"):
        await store.write([record("new3", owner="a"), record("new1", owner="a")], [end], origin="a")
    assert await reader.get("new3") is None
    info = await reader.get("old")
    assert info is not None
    assert info.state is State.RUNNING


@sql_only
async def test_a_write_whose_commit_was_lost_is_found_written(kit: StoreKit) -> None:
    store = kit.store()
    assert isinstance(store, SQLStore)
    await store.open()
    await store.insert(record("old", owner="a"))
    claim = RecordUpdate(
        "old", {"state": State.RUNNING, "started": 2.0}, frozenset({State.CREATED}), owner="a"
    )
    batch = [record("new", owner="a")]
    await store.write(batch, [claim], origin="a")
    # What SQLStore._run runs on a new connection after a COMMIT whose answer was lost: the
    # first record's row is there, so all was written; the updates' answers are lost.
    with pytest.raises(InsertedError):
        await store._run("write", store._write_again, batch, {"a": ["new"]}, [claim], "a")
    # Not written yet: it runs (once).
    assert (
        await store._run("write", store._write_again, [record("later", owner="a")], {"a": ["later"]}, [], "a")
        == []
    )
    assert await kit.new().get("later") is not None
