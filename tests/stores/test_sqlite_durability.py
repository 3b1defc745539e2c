"""SQLiteStore's durability level: FULL by default, NORMAL as an opt-in, nothing else."""

from __future__ import annotations

import pathlib

import pytest

from anyjob import JobManager
from anyjob.stores import SQLiteStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


def _level(store: SQLiteStore) -> int:
    conn = store._connection()
    return int(conn.raw.execute("PRAGMA synchronous").fetchone()[0])


@pytest.mark.parametrize(("given", "level"), [(None, 2), ("FULL", 2), ("NORMAL", 1)])
async def test_the_synchronous_level_is_set_on_the_connection(
    tmp_path: pathlib.Path, given: str | None, level: int
) -> None:
    path = tmp_path / "jobs.db"
    store = SQLiteStore(path) if given is None else SQLiteStore(path, synchronous=given)
    try:
        async with JobManager(store):
            pass
        assert store.synchronous == (given or "FULL")
        assert _level(store) == level
    finally:
        store.close()


@pytest.mark.parametrize("given", ["full", "OFF", "EXTRA", "", 1])
def test_another_level_is_refused(tmp_path: pathlib.Path, given: object) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "jobs.db", synchronous=given)  # type: ignore[arg-type]
