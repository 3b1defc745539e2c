"""A database made by an older anyjob (layout version 1, 2 or 3) is brought up to date in place when opened.

Version 2 added ``anyjob_changes.final``: the deleted row, so feeds tell how a deleted job ended.
Version 3 added ``anyjob_jobs.updated``, ``traceback`` and ``stale_after`` (external jobs).
Version 4 added the table ``anyjob_leases`` and the index ``anyjob_jobs_waiting``
(tests/stores/test_migration_v4.py).
The version-1, 2 and 3 tables below are the DDL as those versions wrote it (frozen here,
not derived from the code under test).
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import Callable

import anyio
import pytest
from tests.stores.support import changes_until, record

from anyjob import State
from anyjob.stores import JobQuery, PostgresStore, RecordUpdate, SQLiteStore
from anyjob.stores._connection import SCHEMA_VERSION
from conftest import POSTGRES_DSN

pytestmark = pytest.mark.anyio

_V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS anyjob_jobs (
    id {id} PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    labels TEXT NOT NULL,
    params TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created {real} NOT NULL,
    scheduled {real} NOT NULL,
    owner TEXT NOT NULL,
    function TEXT NOT NULL,
    progress {real} NOT NULL,
    message TEXT,
    result TEXT NOT NULL,
    error TEXT,
    error_type TEXT,
    attempts INTEGER NOT NULL,
    started {real},
    ended {real},
    cancel_requested INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_state ON anyjob_jobs (state, created DESC, id DESC);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_name ON anyjob_jobs (name, created DESC, id DESC);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_created ON anyjob_jobs (created DESC, id DESC);
CREATE INDEX IF NOT EXISTS anyjob_jobs_by_ended ON anyjob_jobs (ended) WHERE ended IS NOT NULL;
CREATE TABLE IF NOT EXISTS anyjob_labels (
    job_id {id} NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX IF NOT EXISTS anyjob_labels_by_pair ON anyjob_labels (key, value);
CREATE TABLE IF NOT EXISTS anyjob_changes (
    seq {serial},
    job_id TEXT NOT NULL,
    origin TEXT NOT NULL,
    at {real} NOT NULL
);
"""
#: Version 2: version 1 with the change log's ``final`` column.
_V2_SCHEMA = _V1_SCHEMA.replace("    at {real} NOT NULL\n);", "    at {real} NOT NULL,\n    final TEXT\n);")
assert _V2_SCHEMA != _V1_SCHEMA
# One finished job as version 1 stored it (labels, params and result as JSON text).
_V1_JOB = (
    "INSERT INTO anyjob_jobs (id, name, state, labels, params, priority, created, scheduled, owner,"
    " function, progress, message, result, error, error_type, attempts, started, ended, cancel_requested)"
    " VALUES ('old', 'job', 'succeeded', '{\"k\":\"v\"}', '[1]', 0, 1700000000.0, 1700000000.0, 'gone',"
    " 'fn', 1.0, NULL, '\"out\"', NULL, NULL, 1, 1700000001.0, 1700000003.0, 0)"
)


def _statements(schema: str = _V1_SCHEMA, **types: str) -> list[str]:
    return [statement for statement in schema.format(**types).split(";") if statement.strip()]


def _make_v1_sqlite(path: pathlib.Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for statement in _statements(real="REAL", serial="INTEGER PRIMARY KEY AUTOINCREMENT", id="TEXT"):
            conn.execute(statement)
        conn.execute(_V1_JOB)
        conn.execute("INSERT INTO anyjob_labels (job_id, key, value) VALUES ('old', 'k', 'v')")
        conn.execute("INSERT INTO anyjob_changes (job_id, origin, at) VALUES ('old', 'gone', 1700000003.0)")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()


def _make_v1_postgres(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("CREATE TABLE anyjob_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO anyjob_meta (key, value) VALUES ('schema_version', '1')")
        for statement in _statements(
            real="DOUBLE PRECISION", serial="BIGSERIAL PRIMARY KEY", id='TEXT COLLATE "C"'
        ):
            conn.execute(statement.encode())
        conn.execute(_V1_JOB.encode())
        conn.execute("INSERT INTO anyjob_labels (job_id, key, value) VALUES ('old', 'k', 'v')")
        conn.execute("INSERT INTO anyjob_changes (job_id, origin, at) VALUES ('old', 'gone', 1700000003.0)")


def _sqlite_layout(path: pathlib.Path) -> tuple[int, set[str]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(anyjob_changes)")}
    return version, columns


def _postgres_layout(schema: str) -> tuple[int, set[str]]:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT value FROM \"{schema}\".anyjob_meta WHERE key = 'schema_version'"  # noqa: S608
        ).fetchone()
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (schema, "anyjob_changes"),
        ).fetchall()
    assert row is not None
    return int(row[0]), {column for (column,) in columns}


async def _works_after_migration(make: Callable[[], SQLiteStore | PostgresStore]) -> None:
    """Opened at once by several processes; the old records read; deletions carry their end."""
    stores = [make() for _ in range(4)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.open)
        mine, other = stores[0], stores[1]
        old = await mine.get("old")
        assert old is not None
        assert (old.state, dict(old.labels), old.params, old.result, old.duration) == (
            State.SUCCEEDED,
            {"k": "v"},
            [1],
            "out",
            2.0,
        )
        feed = mine.subscribe("manager-a")
        await other.insert(record("new", owner="manager-b"))
        assert await other.delete("old", origin="manager-b") is State.SUCCEEDED
        seen = await changes_until(feed, lambda seen: any(c.job_id == "old" for c in seen))
        gone = next(c for c in seen if c.job_id == "old")
        assert gone.info is None
        assert gone.final is not None
        assert (gone.final.state, gone.final.result) == (State.SUCCEEDED, "out")
        feed.close()
        assert [info.id for info in await mine.query(JobQuery())] == ["new"]
        assert await mine.query(JobQuery(labels={"k": "v"})) == []
    finally:
        for store in stores:
            store.close()


async def test_a_version_1_sqlite_file_is_migrated_in_place(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "jobs.db"
    _make_v1_sqlite(path)
    assert _sqlite_layout(path) == (1, {"seq", "job_id", "origin", "at"})
    await _works_after_migration(lambda: SQLiteStore(path, poll_interval=0.01))
    assert _sqlite_layout(path) == (SCHEMA_VERSION, {"seq", "job_id", "origin", "at", "final"})


@pytest.mark.postgres
async def test_a_version_1_postgres_schema_is_migrated_in_place(postgres_schema: str) -> None:
    _make_v1_postgres(postgres_schema)
    assert _postgres_layout(postgres_schema) == (1, {"seq", "job_id", "origin", "at"})
    await _works_after_migration(
        lambda: PostgresStore(POSTGRES_DSN, schema=postgres_schema, poll_interval=0.01)
    )
    assert _postgres_layout(postgres_schema) == (SCHEMA_VERSION, {"seq", "job_id", "origin", "at", "final"})


async def test_a_deletion_logged_without_its_final_info_is_still_reported(tmp_path: pathlib.Path) -> None:
    """An older anyjob, still running on the migrated file, logs deletions without ``final``."""
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path, poll_interval=0.01)
    try:
        await store.open()
        feed = store.subscribe("manager-a")
        with contextlib.closing(sqlite3.connect(path)) as conn:  # what that older process writes
            conn.execute("INSERT INTO anyjob_changes (job_id, origin, at) VALUES ('elsewhere', 'old', 1.0)")
            conn.commit()
        seen = await changes_until(feed, lambda seen: any(c.job_id == "elsewhere" for c in seen))
        assert [(c.job_id, c.info, c.final) for c in seen] == [("elsewhere", None, None)]
        feed.close()
    finally:
        store.close()


# -- version 2 to 3 ------------------------------------------------------------------------------

_SQLITE_TYPES = {"real": "REAL", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "id": "TEXT"}
_POSTGRES_TYPES = {"real": "DOUBLE PRECISION", "serial": "BIGSERIAL PRIMARY KEY", "id": 'TEXT COLLATE "C"'}
# A job running under a manager of version 2 (no stale_after: never expired).
_V2_RUNNING = (
    "INSERT INTO anyjob_jobs (id, name, state, labels, params, priority, created, scheduled, owner,"
    " function, progress, message, result, error, error_type, attempts, started, ended, cancel_requested)"
    " VALUES ('busy', 'job', 'running', '{}', 'null', 0, 1700000000.0, 1700000000.0, 'v2',"
    " 'fn', 0.5, 'half', 'null', NULL, NULL, 1, 1700000001.0, NULL, 0)"
)
_ADDED = {"updated", "traceback", "stale_after"}


def _make_v2_sqlite(path: pathlib.Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for statement in _statements(_V2_SCHEMA, **_SQLITE_TYPES):
            conn.execute(statement)
        conn.execute(_V1_JOB)
        conn.execute(_V2_RUNNING)
        conn.execute("INSERT INTO anyjob_labels (job_id, key, value) VALUES ('old', 'k', 'v')")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()


def _make_v2_postgres(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("CREATE TABLE anyjob_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO anyjob_meta (key, value) VALUES ('schema_version', '2')")
        for statement in _statements(_V2_SCHEMA, **_POSTGRES_TYPES):
            conn.execute(statement.encode())
        conn.execute(_V1_JOB.encode())
        conn.execute(_V2_RUNNING.encode())
        conn.execute("INSERT INTO anyjob_labels (job_id, key, value) VALUES ('old', 'k', 'v')")


def _sqlite_job_columns(path: pathlib.Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(anyjob_jobs)")}


def _postgres_job_columns(schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (schema, "anyjob_jobs"),
        ).fetchall()
    return {column for (column,) in rows}


async def _reads_version_2_rows(make: Callable[[], SQLiteStore | PostgresStore]) -> None:
    """Opened at once by several processes; the old rows read with the new fields ``None``."""
    stores = [make() for _ in range(3)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.open)
        store = stores[0]
        for job_id in ("old", "busy"):
            copy = await store.get_record(job_id)
            assert copy is not None
            assert (copy.updated, copy.traceback, copy.stale_after) == (None, None, None)
            info = await store.get(job_id)
            assert info is not None
            assert info.traceback is None
        old = await store.get("old")
        busy = await store.get("busy")
        assert old is not None
        assert busy is not None
        assert (old.state, old.result, old.updated_at) == (State.SUCCEEDED, "out", old.ended_at)
        assert (busy.state, busy.message, busy.updated_at) == (State.RUNNING, "half", busy.started_at)
        assert {info.id for info in await store.query(JobQuery())} == {"old", "busy"}
        # No stale_after: never expired, however old.
        assert await store.expire_stale(9e9, origin="manager-a") == []
        # The new columns take writes, and expire_stale finds what has them.
        other = stores[1]
        assert await other.apply(
            [RecordUpdate("busy", {"stale_after": 5.0, "updated": 1_700_000_010.0})], origin="manager-b"
        ) == [True]
        assert await store.expire_stale(1_700_000_014.0, origin="manager-a") == []
        assert await store.expire_stale(1_700_000_016.0, origin="manager-a") == ["busy"]
        lost = await other.get_record("busy")
        assert lost is not None
        assert (lost.state, lost.error_type, lost.ended) == (State.FAILED, "JobLostError", 1_700_000_016.0)
        await store.insert(record("new", traceback="tb", stale_after=1.0))
        new = await other.get_record("new")
        assert new is not None
        assert (new.traceback, new.stale_after) == ("tb", 1.0)
    finally:
        for store in stores:
            store.close()


async def test_a_version_2_sqlite_file_gains_the_columns_of_version_3(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "jobs.db"
    _make_v2_sqlite(path)
    assert _sqlite_layout(path) == (2, {"seq", "job_id", "origin", "at", "final"})
    assert not _sqlite_job_columns(path) & _ADDED
    await _reads_version_2_rows(lambda: SQLiteStore(path, poll_interval=0.01))
    assert _sqlite_layout(path) == (SCHEMA_VERSION, {"seq", "job_id", "origin", "at", "final"})
    assert _sqlite_job_columns(path) >= _ADDED
    with contextlib.closing(sqlite3.connect(path)) as conn:
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(anyjob_jobs)")}
    assert "anyjob_jobs_stale" in indexes


@pytest.mark.postgres
async def test_a_version_2_postgres_schema_gains_the_columns_of_version_3(postgres_schema: str) -> None:
    _make_v2_postgres(postgres_schema)
    assert _postgres_layout(postgres_schema) == (2, {"seq", "job_id", "origin", "at", "final"})
    assert not _postgres_job_columns(postgres_schema) & _ADDED
    await _reads_version_2_rows(
        lambda: PostgresStore(POSTGRES_DSN, schema=postgres_schema, poll_interval=0.01)
    )
    assert _postgres_layout(postgres_schema) == (SCHEMA_VERSION, {"seq", "job_id", "origin", "at", "final"})
    assert _postgres_job_columns(postgres_schema) >= _ADDED


async def test_a_version_1_sqlite_file_gains_the_columns_of_version_3_too(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "jobs.db"
    _make_v1_sqlite(path)
    store = SQLiteStore(path, poll_interval=0.01)
    try:
        old = await store.get_record("old")
    finally:
        store.close()
    assert old is not None
    assert (old.updated, old.traceback, old.stale_after) == (None, None, None)
    assert _sqlite_job_columns(path) >= _ADDED


async def test_a_deletion_logged_by_version_2_reads_without_the_new_fields(tmp_path: pathlib.Path) -> None:
    """A version-2 process still running on the migrated file logs a final row without them."""
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path, poll_interval=0.01)
    try:
        await store.open()
        feed = store.subscribe("manager-a")
        final = (
            '{"id":"v2","name":"job","state":"succeeded","labels":"{}","params":"null","priority":0,'
            '"created":1700000000.0,"scheduled":1700000000.0,"owner":"v2","function":"fn","progress":1.0,'
            '"message":null,"result":"\\"out\\"","error":null,"error_type":null,"attempts":1,'
            '"started":1700000001.0,"ended":1700000002.0,"cancel_requested":0}'
        )
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(
                "INSERT INTO anyjob_changes (job_id, origin, at, final) VALUES ('v2', 'old', 1.0, ?)",
                (final,),
            )
            conn.commit()
        seen = await changes_until(feed, lambda seen: any(c.job_id == "v2" for c in seen))
        [gone] = seen
        assert gone.info is None
        assert gone.final is not None
        assert (gone.final.state, gone.final.result, gone.final.traceback) == (State.SUCCEEDED, "out", None)
        assert gone.final.updated_at == gone.final.ended_at
        feed.close()
    finally:
        store.close()
