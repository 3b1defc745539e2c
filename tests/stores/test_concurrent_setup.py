"""Many processes opening one fresh database at once: schema creation must not race."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import uuid

import pytest
from tests.stores.support import require_postgres

from conftest import POSTGRES_DSN, drop_postgres_schemas

PROCESSES = 4
TRIALS = 4

# Each child builds its store, says "ready", waits for "go" on stdin, then opens it:
# the parent says "go" to all of them at once, so the opens overlap.
CHILD = """
import sys
import anyio
from anyjob.stores import PostgresStore, SQLiteStore

kind, target = sys.argv[1], sys.argv[2]
if kind == "sqlite":
    store = SQLiteStore(target, connect_timeout=30)
else:
    store = PostgresStore(sys.argv[3], schema=target, connect_timeout=30)
print("ready", flush=True)
sys.stdin.readline()
anyio.run(store.open)
store.close()
print("opened", flush=True)
"""


def _open_at_once(*args: str) -> list[tuple[int, str, str]]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results: list[tuple[int, str, str]] = []
        for child in children:
            out, err = child.communicate(timeout=50)
            results.append((child.returncode, out, err))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def _assert_all_opened(results: list[tuple[int, str, str]]) -> None:
    failures = [
        err.strip().splitlines()[-1] for code, out, err in results if code != 0 or "opened" not in out
    ]
    assert failures == []


def test_processes_create_one_sqlite_file_at_once(tmp_path: pathlib.Path) -> None:
    for trial in range(TRIALS):
        _assert_all_opened(_open_at_once("sqlite", str(tmp_path / f"jobs-{trial}.db")))


@pytest.mark.postgres
def test_processes_create_one_postgres_schema_at_once() -> None:
    require_postgres()
    schemas = [f"anyjob_test_{uuid.uuid4().hex[:16]}" for _ in range(TRIALS)]
    try:
        for schema in schemas:
            _assert_all_opened(_open_at_once("postgres", schema, POSTGRES_DSN))
    finally:
        drop_postgres_schemas(schemas)
