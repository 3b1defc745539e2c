"""A database made by an older anyjob (layout version 1) is brought up to date in place when opened.

Version 2 added ``anyjob_changes.final``: the deleted row, so feeds tell how a deleted job ended.
The version-1 tables below are the DDL as version 1 wrote it (frozen here, not derived).
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import AsyncGenerator, Callable
from typing import cast

import anyio
import pytest
from tests.stores.support import record

from anyjob import State
from anyjob.stores import JobQuery, PostgresStore, SQLiteStore, StoreChange, StoreFeed
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
# One finished job as version 1 stored it (labels, params and result as JSON text).
_V1_JOB = (
    "INSERT INTO anyjob_jobs (id, name, state, labels, params, priority, created, scheduled, owner,"
    " function, progress, message, result, error, error_type, attempts, started, ended, cancel_requested)"
    " VALUES ('old', 'job', 'succeeded', '{\"k\":\"v\"}', '[1]', 0, 1700000000.0, 1700000000.0, 'gone',"
    " 'fn', 1.0, NULL, '\"out\"', NULL, NULL, 1, 1700000001.0, 1700000003.0, 0)"
)


def _statements(**types: str) -> list[str]:
    return [statement for statement in _V1_SCHEMA.format(**types).split(";") if statement.strip()]


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


async def _changes_until(feed: StoreFeed, done: Callable[[list[StoreChange]], bool]) -> list[StoreChange]:
    seen: list[StoreChange] = []
    async with contextlib.aclosing(cast("AsyncGenerator[list[StoreChange], None]", aiter(feed))) as batches:
        with anyio.fail_after(5):
            async for changes in batches:
                seen.extend(changes)
                if done(seen):
                    break
    return seen


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
        seen = await _changes_until(feed, lambda seen: any(c.job_id == "old" for c in seen))
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
        seen = await _changes_until(feed, lambda seen: any(c.job_id == "elsewhere" for c in seen))
        assert [(c.job_id, c.info, c.final) for c in seen] == [("elsewhere", None, None)]
        feed.close()
    finally:
        store.close()
