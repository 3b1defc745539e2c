"""A stored record that cannot be decoded fails only the reads of that record, never a whole query."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.stores.support import StoreKit, record

from anyjob import State, StoreError
from anyjob.stores import JobQuery, PostgresStore, SQLiteStore
from conftest import POSTGRES_DSN

pytestmark = pytest.mark.anyio


def _years(*values: datetime | None) -> list[int | None]:
    return [None if value is None else value.year for value in values]


def _write_raw(kit: StoreKit, sql: str, *params: Any) -> None:
    """Change the stored rows behind the store's back (as an older or broken writer would)."""
    store = kit.store()
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path, isolation_level=None)) as conn:
            conn.execute(sql, params)
        return
    import psycopg

    assert isinstance(store, PostgresStore)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{store.schema}"')
        conn.execute(sql.replace("?", "%s"), params)


async def test_times_out_of_range_are_clamped(kit: StoreKit) -> None:
    store = kit.store()
    await store.insert(
        record("far", created=1_700_000_000.0, scheduled=1e12, started=-1e12, ended=float("inf"))
    )
    await store.insert(record("near"))
    infos = {info.id: info for info in await kit.new().query(JobQuery())}
    assert set(infos) == {"far", "near"}
    far = infos["far"]
    assert _years(far.scheduled_at, far.started_at, far.ended_at) == [9999, 1, 9999]
    assert far.created_at == datetime.fromtimestamp(1_700_000_000.0, UTC)
    info = await store.get("far")
    assert info is not None
    assert _years(info.scheduled_at) == [9999]


async def test_an_undecodable_row_fails_its_get_not_the_query(kit: StoreKit) -> None:
    if not kit.durable:
        pytest.skip("only stored rows can be undecodable")
    store = kit.store()
    for job_id in ["ok", "bad-json", "bad-state", "bad-labels"]:
        await store.insert(record(job_id, state=State.SUCCEEDED, ended=1.0))
    _write_raw(kit, "UPDATE anyjob_jobs SET params = ? WHERE id = ?", "{not json", "bad-json")
    _write_raw(kit, "UPDATE anyjob_jobs SET state = ? WHERE id = ?", "exploded", "bad-state")
    _write_raw(kit, "UPDATE anyjob_jobs SET labels = ? WHERE id = ?", "[1, 2]", "bad-labels")
    with pytest.warns(RuntimeWarning) as warned:
        infos = await store.query(JobQuery())
    assert [info.id for info in infos] == ["ok"]
    messages = " ".join(str(warning.message) for warning in warned)
    assert all(job_id in messages for job_id in ["bad-json", "bad-state", "bad-labels"])
    for job_id in ["bad-json", "bad-state", "bad-labels"]:
        with pytest.raises(StoreError, match=f"cannot decode the stored record of job '{job_id}'") as caught:
            await store.get(job_id)
        assert caught.value.job_id == job_id
        with pytest.raises(StoreError):
            await store.get_record(job_id)
    stats = await store.statistics()  # counts what it can: the unknown state is left out
    assert (stats.total, stats.by_state[State.SUCCEEDED]) == (3, 3)
    assert await store.delete_finished(2.0) == 3  # the undecodable state is not a finished one
