"""Nothing reported that is not stored: ``kill -9`` at random moments of a mass finish.

A child process (tests/fault_mass_finish.py) submits 300 jobs, lets them all end at once and
prints each end the moment ``wait`` or ``events`` reports it. It is killed with SIGKILL after a
random number of reported ends; then every end it printed (those still in the pipe included)
must be in the database with the state reported, and every job whose ``submit`` returned must
be there. Over SQLite and PostgreSQL, the child on asyncio and on trio.
"""

from __future__ import annotations

import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from tests.stores.support import require_postgres

from conftest import POSTGRES_DSN, drop_postgres_schemas

CHILD = pathlib.Path(__file__).with_name("fault_mass_finish.py")
ROOT = pathlib.Path(__file__).parent.parent
COUNT = 300
TRIALS = 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[str]:
    """The store of one trial: ``sqlite:PATH`` or ``postgres:SCHEMA`` (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'jobs.db'}"
        return
    require_postgres()
    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
    yield f"postgres:{schema}"
    drop_postgres_schemas([schema])


def _stored(where: str) -> dict[str, str]:
    """Every job's state in the database, by id."""
    kind, _, place = where.partition(":")
    if kind == "sqlite":
        with sqlite3.connect(place) as conn:
            return dict(conn.execute("SELECT id, state FROM anyjob_jobs").fetchall())
    import psycopg

    with psycopg.connect(POSTGRES_DSN) as conn:
        query = f'SELECT id, state FROM "{place}".anyjob_jobs'  # noqa: S608 - the test's own schema name
        return dict(conn.execute(query).fetchall())  # type: ignore[arg-type]


def _trial(where: str, backend: str, kill_after: int) -> tuple[list[str], dict[str, str]]:
    """One child killed after *kill_after* reported ends: (submitted ids, the ends reported)."""
    with subprocess.Popen(
        [sys.executable, str(CHILD), where, str(COUNT), backend],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as child:
        assert child.stdout is not None
        lines: list[str] = []
        reported = 0
        for line in child.stdout:
            lines.append(line)
            if line.startswith(("waited", "event")):
                reported += 1
                if reported >= kill_after:
                    break
        child.send_signal(signal.SIGKILL)
        lines.extend(child.stdout)  # what it printed before it died was reported too
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "".join(lines[-20:])
    lines = [line for line in lines if line.endswith("\n")]  # a line cut short by the kill: not reported
    submitted = [line.split()[1] for line in lines if line.startswith("submitted")]
    ends: dict[str, str] = {}
    for line in lines:
        if line.startswith(("waited", "event")):
            _, job_id, state = line.split()
            assert ends.setdefault(job_id, state) == state
    return submitted, ends


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_every_reported_end_is_in_the_database_after_kill_9(where: str, backend: str) -> None:
    rng = random.Random()  # noqa: S311 - a test's random moments, not secrets
    seed = rng.randrange(2**32)
    rng.seed(seed)
    for trial in range(TRIALS):
        place = f"{where}-{trial}" if where.startswith("sqlite") else where
        kill_after = rng.randint(1, COUNT)
        submitted, ends = _trial(place, backend, kill_after)
        stored = _stored(place)
        assert len(submitted) == COUNT, f"seed {seed}"
        assert set(submitted) <= set(stored), f"seed {seed}: a submitted job is not in the database"
        lost = {job_id: state for job_id, state in ends.items() if stored.get(job_id) != state}
        assert lost == {}, f"seed {seed}, killed after {kill_after} reported ends: reported, not stored"
        if where.startswith("postgres"):
            drop_postgres_schemas([where.partition(":")[2]])  # the next trial: a fresh one
