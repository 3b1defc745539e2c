"""A SQL store while its database is away, and its notice of other processes' writes.

* Unreachable: every call raises StoreError (the driver's error chained); the hooks hear
  ``store_unavailable`` once, and ``store_available`` once a write succeeds again (reads
  of an SQLite file locked by another writer go on meanwhile).
* A feed learns of another store object's write from the store's watcher (PostgreSQL
  LISTEN, SQLite data_version), not from its poll: the poll here is 60 s, longer than any
  test waits. After a lost listening connection it reads the log again (resync).
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import uuid
from collections.abc import AsyncGenerator, Iterator
from typing import cast

import anyio
import pytest
from tests.stores.outage import AVAILABLE, UNAVAILABLE, PostgresOutage, SQLiteLock, StoreEvents
from tests.stores.support import changes_until, record, require_postgres

from anyjob import JobError, State, StoreError, instrumentation
from anyjob.stores import PostgresStore, RecordUpdate, SQLiteStore, StoreChange, _notice, _sql_leases
from anyjob.stores._base import StoreFeed

pytestmark = pytest.mark.anyio

_NEVER = 60.0  # a poll interval no test waits for


@pytest.fixture
def outage() -> Iterator[PostgresOutage]:
    require_postgres()
    made = PostgresOutage()
    yield made
    made.close()


@pytest.fixture
def events() -> StoreEvents:
    hook = StoreEvents()
    instrumentation.set_hooks([hook])
    return hook


def _schema() -> str:
    return f"anyjob_test_{uuid.uuid4().hex[:16]}"


def _has(job_id: str, state: State):  # type: ignore[no-untyped-def]
    def done(seen: list[StoreChange]) -> bool:
        return any(change.job_id == job_id and change.info and change.info.state is state for change in seen)

    return done


async def _watching(store: SQLiteStore | PostgresStore) -> None:
    """Until a feed of *store* waits, watching for other connections' writes."""
    with anyio.fail_after(5):
        while not ((lock := store._notices._driving) and lock.locked()):  # type: ignore[attr-defined]  # noqa: ASYNC110
            await anyio.sleep(0.005)


async def _written_while_waiting(
    reader: SQLiteStore | PostgresStore, writer: SQLiteStore | PostgresStore, feed: StoreFeed
) -> None:
    """Another store object writes while *feed* (of *reader*) waits: the feed reports each write."""
    seen: list[StoreChange] = []

    async def follow() -> None:
        batches = cast("AsyncGenerator[list[StoreChange], None]", aiter(feed))
        async with contextlib.aclosing(batches):
            async for changes in batches:
                seen.extend(changes)
                if _has("j1", State.CANCELED)(seen):
                    return

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await _watching(reader)
            await writer.insert(record("j1"), origin="a")
            while not _has("j1", State.CREATED)(seen):  # noqa: ASYNC110 - the feed's task fills it
                await anyio.sleep(0.005)
            await _watching(reader)
            await writer.apply([RecordUpdate("j1", {"state": State.CANCELED})], origin="a")
    assert _has("j1", State.CANCELED)(seen)


@pytest.mark.postgres
async def test_postgres_away_then_back(outage: PostgresOutage, events: StoreEvents) -> None:
    import psycopg

    store = PostgresStore(outage.dsn, schema=_schema(), connect_timeout=2)
    try:
        await store.insert(record("j1"))
        assert outage.away()
        for _ in range(3):
            with pytest.raises(StoreError, match="could not") as caught:
                await store.get("j1")
            assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        with pytest.raises(StoreError):
            await store.insert(record("j2"))
        assert events.names == [UNAVAILABLE]
        assert store.availability.away
        (gone,) = events.seen
        assert isinstance(gone.error, StoreError)
        assert "PostgresStore" in gone.job_name
        outage.back()
        info = await store.get("j1")  # a read: the database answers, not yet written to
        assert info is not None
        assert events.names == [UNAVAILABLE]
        await store.insert(record("j2"))
        assert events.names == [UNAVAILABLE, AVAILABLE]
        assert events.seen[1].duration is not None
        assert events.seen[1].duration > 0
        assert await store.get("j2") is not None
    finally:
        store.close()


async def test_sqlite_locked_by_another_process(tmp_path: pathlib.Path, events: StoreEvents) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path, busy_timeout=0.1)
    try:
        await store.insert(record("j1"))
        lock = SQLiteLock(path)
        try:
            for job_id in ("j2", "j3"):
                with pytest.raises(StoreError, match="could not insert") as caught:
                    await store.insert(record(job_id))
                assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
                info = await store.get("j1")  # readers are not locked out (WAL)
                assert info is not None
            with pytest.raises(StoreError, match="could not update"):
                await store.apply([RecordUpdate("j1", {"progress": 0.5})], origin="a")
        finally:
            lock.release()
        assert events.names == [UNAVAILABLE]
        await store.insert(record("j2"))
        assert events.names == [UNAVAILABLE, AVAILABLE]
        assert await store.get("j3") is None  # what failed left nothing behind
    finally:
        store.close()


async def test_an_insert_whose_commit_was_lost_is_found_written(tmp_path: pathlib.Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    try:
        first = record("j1", owner="a")
        await store.insert(first)
        # What SQLStore._run runs on a new connection after a COMMIT whose answer was lost:
        # the row there is this record, so the insert was written.
        await store._run("insert job 'j1'", store._write_again, [first], {"a": ["j1"]}, (), "a")
        other = record("j1", owner="b")
        with pytest.raises(JobError, match="already exists"):
            await store._run("insert job 'j1'", store._write_again, [other], {"b": ["j1"]}, (), "b")
        assert await store.get("j2") is None
    finally:
        store.close()


async def test_a_claim_whose_commit_was_lost_is_found_taken(tmp_path: pathlib.Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    try:
        for job_id in ("j1", "j2"):
            await store.insert(record(job_id, owner="a"))  # "a" holds no lease: anyone's
        tried: list[str] = []
        args = (["fn"], "b", 10, 0.0, store._changed, tried)
        taken, _ = await store._run("take waiting jobs", _sql_leases.claim_waiting, *args)
        assert [job.id for job in taken] == tried == ["j1", "j2"]
        # What SQLStore._run runs on a new connection after that COMMIT's answer was lost:
        # the records tried are b's now, so that claim was written.
        again, _ = await store._run("take waiting jobs", _sql_leases.claim_again, *args)
        assert [(job.id, job.owner) for job in again] == [("j1", "b"), ("j2", "b")]
        # Not written (nothing of b's among them): it claims anew.
        await store.insert(record("j3", owner="a", function="other"))
        fresh = (["other"], "c", 10, 0.0, store._changed, ["j3"])
        anew, _ = await store._run("take waiting jobs", _sql_leases.claim_again, *fresh)
        assert [(job.id, job.owner) for job in anew] == [("j3", "c")]
    finally:
        store.close()


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "looking"])
async def test_sqlite_feeds_notice_another_connections_write(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, inotify: bool
) -> None:
    if not inotify:  # as where Linux's inotify is not at hand: data_version every few ms
        monkeypatch.setattr(_notice._Inotify, "of", staticmethod(lambda path: None))
    path = tmp_path / "jobs.db"
    writer, reader = SQLiteStore(path), SQLiteStore(path, poll_interval=_NEVER)
    try:
        await writer.open()
        await reader.open()
        feed = reader.subscribe("b")
        await _written_while_waiting(reader, writer, feed)
        assert (reader._notices._watched is not None) is inotify  # type: ignore[attr-defined]
        feed.close()
    finally:
        writer.close()
        reader.close()


@pytest.mark.postgres
async def test_postgres_feeds_notice_another_connections_write(outage: PostgresOutage) -> None:
    schema = _schema()
    writer = PostgresStore(outage.dsn, schema=schema)
    reader = PostgresStore(outage.dsn, schema=schema, poll_interval=_NEVER)
    try:
        await writer.open()
        await reader.open()
        feed = reader.subscribe("b")
        await _written_while_waiting(reader, writer, feed)
        feed.close()
    finally:
        writer.close()
        reader.close()


@pytest.mark.postgres
async def test_postgres_feeds_read_again_after_a_lost_listener(outage: PostgresOutage) -> None:
    from conftest import POSTGRES_DSN

    schema = _schema()
    reader = PostgresStore(outage.dsn, schema=schema, poll_interval=_NEVER, connect_timeout=2)
    writer = PostgresStore(POSTGRES_DSN, schema=schema)  # not cut off
    try:
        await reader.open()
        feed = reader.subscribe("b")
        seen: list[StoreChange] = []

        async def follow() -> None:
            seen.extend(await changes_until(feed, _has("j2", State.CREATED)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            with anyio.fail_after(5):
                while reader._notices._conn is None:  # type: ignore[attr-defined]  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            # Cut off while it listens: what is written meanwhile reaches no LISTEN of it.
            assert outage.away() >= 2  # its connection for calls and the one listening
            await writer.insert(record("j2"), origin="a")
            outage.back()
        assert _has("j2", State.CREATED)(seen)  # read again once it listened anew
        feed.close()
    finally:
        writer.close()
        reader.close()
