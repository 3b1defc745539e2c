"""A database of layout version 3 (or older) gains what version 4 added when opened.

Version 4 added the table ``anyjob_leases`` (each manager's lease) and the partial index
``anyjob_jobs_waiting`` (the waiting records, in the order ``claim_waiting`` takes them):
no column changes. The version-3 tables below are the DDL as that version wrote it
(frozen here, not derived from the code under test).
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import Callable

import anyio
import pytest
from tests.stores.support import record
from tests.stores.test_migration import (
    _POSTGRES_TYPES,
    _SQLITE_TYPES,
    _V1_JOB,
    _V2_RUNNING,
    _V2_SCHEMA,
    _make_v1_sqlite,
    _make_v2_sqlite,
    _postgres_layout,
    _sqlite_layout,
    _statements,
)

from anyjob import State
from anyjob.stores import PostgresStore, SQLiteStore
from anyjob.stores._connection import SCHEMA_VERSION
from conftest import POSTGRES_DSN

pytestmark = pytest.mark.anyio


#: Version 3: version 2 with the jobs' updated, traceback and stale_after, and their index.
_V3_SCHEMA = (
    _V2_SCHEMA.replace(
        "    cancel_requested INTEGER NOT NULL\n);",
        "    cancel_requested INTEGER NOT NULL,\n    updated {real},\n    traceback TEXT,\n"
        "    stale_after {real}\n);",
    )
    + "CREATE INDEX IF NOT EXISTS anyjob_jobs_stale ON anyjob_jobs (state) WHERE stale_after IS NOT NULL;\n"
)
assert _V3_SCHEMA.count("stale_after {real}") == 1
# A job waiting under a manager of version 3 (which never takes a lease).
_V3_WAITING = (
    "INSERT INTO anyjob_jobs (id, name, state, labels, params, priority, created, scheduled, owner,"
    " function, progress, message, result, error, error_type, attempts, started, ended, cancel_requested,"
    " updated, traceback, stale_after)"
    " VALUES ('queued', 'job', 'created', '{}', '[2]', 3, 1700000000.0, 1700000000.0, 'v2',"
    " 'fn', 0.0, NULL, 'null', NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, NULL)"
)


def _make_v3(execute: Callable[[str], object], types: dict[str, str]) -> None:
    for statement in _statements(_V3_SCHEMA, **types):
        execute(statement)
    execute(_V1_JOB)
    execute(_V2_RUNNING)  # running under 'v2': never leased
    execute(_V3_WAITING)


def _make_v3_sqlite(path: pathlib.Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        _make_v3(conn.execute, _SQLITE_TYPES)
        conn.execute("PRAGMA user_version = 3")
        conn.commit()


def _make_v3_postgres(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("CREATE TABLE anyjob_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO anyjob_meta (key, value) VALUES ('schema_version', '3')")
        _make_v3(lambda statement: conn.execute(statement.encode()), _POSTGRES_TYPES)


def _sqlite_names(path: pathlib.Path) -> set[str]:
    """The tables and indexes of an SQLite file."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}


def _postgres_names(schema: str) -> set[str]:
    import psycopg

    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s"
            " UNION SELECT indexname FROM pg_indexes WHERE schemaname = %s",
            (schema, schema),
        ).fetchall()
    return {name for (name,) in rows}


async def _leases_work_on_version_3_rows(make: Callable[[], SQLiteStore | PostgresStore]) -> None:
    """Opened at once by several processes; the old rows untouched by recovery, waiting ones shared."""
    stores = [make() for _ in range(3)]
    try:
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(store.open)
        mine, other = stores[0], stores[1]
        await mine.renew_lease("manager-a", 0.05)
        await other.renew_lease("manager-b", 60.0)
        await anyio.sleep(0.3)  # manager-a's lease ran out
        # 'busy' runs under a version-2 manager, which never had a lease: left alone.
        assert await other.recover_lost(origin="manager-b", resumable=["fn"]) == []
        busy = await mine.get_record("busy")
        assert busy is not None
        assert (busy.state, busy.owner) == (State.RUNNING, "v2")
        [taken] = await other.claim_waiting(["fn"], origin="manager-b", limit=5, grace=60.0)
        assert (taken.id, taken.owner, taken.params, taken.priority) == ("queued", "manager-b", [2], 3)
        await mine.insert(record("new", owner="manager-a", state=State.RUNNING, started=1.0))
        await mine.renew_lease("manager-a", 0.05)
        await anyio.sleep(0.3)
        assert await other.recover_lost(origin="manager-b", resumable=["fn"]) == ["new"]
        resumed = await mine.get_record("new")
        assert resumed is not None
        assert (resumed.state, resumed.owner, resumed.started) == (State.CREATED, "", None)
    finally:
        for store in stores:
            store.close()


async def test_a_version_3_sqlite_file_gains_the_leases_of_version_4(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "jobs.db"
    _make_v3_sqlite(path)
    assert _sqlite_layout(path)[0] == 3
    assert not _sqlite_names(path) & {"anyjob_leases", "anyjob_jobs_waiting"}
    await _leases_work_on_version_3_rows(lambda: SQLiteStore(path, poll_interval=0.01))
    assert _sqlite_layout(path)[0] == SCHEMA_VERSION == 4
    assert _sqlite_names(path) >= {"anyjob_leases", "anyjob_jobs_waiting", "anyjob_jobs_stale"}


@pytest.mark.postgres
async def test_a_version_3_postgres_schema_gains_the_leases_of_version_4(postgres_schema: str) -> None:
    _make_v3_postgres(postgres_schema)
    assert _postgres_layout(postgres_schema)[0] == 3
    assert not _postgres_names(postgres_schema) & {"anyjob_leases", "anyjob_jobs_waiting"}
    await _leases_work_on_version_3_rows(
        lambda: PostgresStore(POSTGRES_DSN, schema=postgres_schema, poll_interval=0.01)
    )
    assert _postgres_layout(postgres_schema)[0] == SCHEMA_VERSION == 4
    assert _postgres_names(postgres_schema) >= {"anyjob_leases", "anyjob_jobs_waiting", "anyjob_jobs_stale"}


async def test_versions_1_and_2_gain_the_leases_of_version_4_too(tmp_path: pathlib.Path) -> None:
    for version, make in ((1, _make_v1_sqlite), (2, _make_v2_sqlite)):
        path = tmp_path / f"v{version}.db"
        make(path)
        store = SQLiteStore(path, poll_interval=0.01)
        try:
            await store.renew_lease("manager-a", 60.0)
            assert await store.recover_lost(origin="manager-b", resumable=[]) == []
        finally:
            store.close()
        assert _sqlite_layout(path)[0] == SCHEMA_VERSION
        assert _sqlite_names(path) >= {"anyjob_leases", "anyjob_jobs_waiting"}
