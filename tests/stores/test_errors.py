"""No driver exception reaches a user: every failure of a SQL store is a StoreError, the cause chained."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from typing import Any

import pytest
from tests.stores.support import StoreKit, record

from anyjob import JobError, State, StoreError
from anyjob.stores import JobQuery, PostgresStore, RecordUpdate, SQLiteStore
from conftest import POSTGRES_DSN

pytestmark = pytest.mark.anyio


def _driver_error(error: BaseException) -> bool:
    cause = error.__cause__
    return cause is not None and type(cause).__module__.split(".")[0] in {"sqlite3", "psycopg", "builtins"}


async def test_a_locked_sqlite_file_past_the_busy_timeout(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path, busy_timeout=0.2)
    await store.open()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match="could not insert job 'j1'") as caught:
            await store.insert(record("j1"))
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(StoreError, match="could not request a cancel of job 'j1'"):
            await store.request_cancel("j1", origin="b")
        holder.execute("ROLLBACK")
    await store.insert(record("j1"))  # the same connection works again
    assert await store.get("j1") is not None
    store.close()


async def test_a_file_that_is_not_a_database(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "jobs.db"
    path.write_bytes(b"not a database, " * 100)
    with pytest.raises(StoreError, match="could not read the change log: cannot open") as caught:
        await SQLiteStore(path).open()
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


@pytest.mark.postgres
async def test_a_lost_postgres_connection_is_opened_again_at_once(postgres_schema: str) -> None:
    import psycopg

    separator = "&" if "?" in POSTGRES_DSN else "?"
    store = PostgresStore(
        f"{POSTGRES_DSN}{separator}application_name={postgres_schema}", schema=postgres_schema
    )
    await store.insert(record("j1"))
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (postgres_schema,),
        ).fetchall()
    assert killed
    # Nothing was being committed: the read runs again on a new connection.
    info = await store.get("j1")
    assert info is not None
    assert info.state is State.CREATED
    assert not store.availability.away
    store.close()


async def test_values_the_driver_cannot_bind(kit: StoreKit) -> None:
    if not kit.durable:
        pytest.skip("the driver's limits: a durable store's")
    store = kit.store()
    await store.insert(record("j1"))
    bad_values: list[dict[str, Any]] = [{"priority": 2**70}, {"message": "lone \udc80 surrogate"}]
    if kit.kind == "postgres":
        bad_values.append({"message": "a NUL \x00 byte"})
    for fields in bad_values:
        with pytest.raises(StoreError, match="could not update job 'j1'") as caught:
            await store.apply([RecordUpdate("j1", fields)], origin="a")
        assert _driver_error(caught.value)
        with pytest.raises(StoreError, match="could not insert job 'j2'"):
            await store.insert(record("j2", **fields))
    with pytest.raises(StoreError, match="could not query jobs"):
        await store.query(JobQuery(name="lone \udc80"))
    with pytest.raises(StoreError, match="could not read job"):
        await store.get("lone \udc80")
    # Nothing half-written: the store carries on.
    info = await store.get("j1")
    assert info is not None
    assert (info.priority, info.message) == (0, None)
    assert await store.get("j2") is None
    with pytest.raises(JobError, match="already exists"):
        await store.insert(record("j1"))
