"""A manager whose database goes away while its jobs run and end, over the real engines.

PostgreSQL: the manager's connections are killed with ``pg_terminate_backend`` from a second
connection, and new ones refused meanwhile (a role of its own with ``CONNECTION LIMIT 0``).
SQLite: another process holds the file write-locked (``BEGIN EXCLUSIVE``) longer than the
store's busy timeout. Either way the manager carries on: its running jobs keep running, what
changed meanwhile is written once the database answers, a call that needs the database
meanwhile raises ``StoreError``, and ``wait``/``events`` report an end only once it is stored
(each report is checked against the database the moment it is made). The hooks hear
``store_unavailable`` and ``store_available`` once each. And when every manager was cut off
longer than its lease, the first one back does not take the others for lost.
"""

from __future__ import annotations

import contextlib
import functools
import pathlib
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from tests.stores.outage import AVAILABLE, UNAVAILABLE, PostgresOutage, SQLiteLock, StoreEvents
from tests.stores.support import require_postgres

from anyjob import Context, JobManager, State, StoreError, instrumentation
from anyjob.stores import PostgresStore, SQLiteStore
from conftest import drop_postgres_schemas

pytestmark = pytest.mark.anyio


class Engine:
    """One store under test, a way to read its rows behind the manager's back, and its outage."""

    def __init__(self, kind: str, tmp_path: pathlib.Path) -> None:
        self.kind = kind
        self.outage: PostgresOutage | None = None
        self.lock: SQLiteLock | None = None
        self._path = tmp_path / "jobs.db"
        self._schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
        self._reader: Any = None
        if kind == "postgres":
            require_postgres()
            self.outage = PostgresOutage()

    def store(self) -> SQLiteStore | PostgresStore:
        if self.outage is not None:
            return PostgresStore(self.outage.dsn, schema=self._schema, poll_interval=0.05, connect_timeout=2)
        return SQLiteStore(self._path, poll_interval=0.05, busy_timeout=0.2)

    def stored(self, job_id: str) -> str | None:
        """The job's state in the database now (read on a connection of the test's own)."""
        if self._reader is None:
            if self.outage is not None:
                import psycopg

                from conftest import POSTGRES_DSN

                self._reader = psycopg.connect(POSTGRES_DSN, autocommit=True)
            else:
                self._reader = sqlite3.connect(self._path, isolation_level=None)
        table = f'"{self._schema}".anyjob_jobs' if self.outage is not None else "anyjob_jobs"
        mark = "%s" if self.outage is not None else "?"
        row = self._reader.execute(f"SELECT state FROM {table} WHERE id = {mark}", (job_id,)).fetchone()  # noqa: S608
        return None if row is None else str(row[0])

    def away(self) -> None:
        if self.outage is not None:
            assert self.outage.away()
        else:
            self.lock = SQLiteLock(self._path)

    def back(self) -> None:
        if self.outage is not None:
            self.outage.back()
        elif self.lock is not None:
            self.lock.release()
            self.lock = None

    def close(self) -> None:
        self.back()
        if self._reader is not None:
            self._reader.close()
        if self.outage is not None:
            self.outage.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Engine]:
    made = Engine(request.param, tmp_path)
    yield made
    made.close()


@pytest.fixture
def hooks() -> StoreEvents:
    events = StoreEvents()
    instrumentation.set_hooks([events])
    return events


async def _until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Until *condition* holds (looked at every 10 ms; fails after *seconds*)."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - watching state another task changes
            await anyio.sleep(0.01)
    assert condition(), what


class Reports:
    """What ``wait`` and ``events`` reported, each checked against the database as it came."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.waited: dict[str, str] = {}
        self.ended: dict[str, str] = {}
        self.unstored: list[str] = []
        self.refused = 0

    def check(self, job_id: str, state: State, how: str) -> None:
        stored = self._engine.stored(job_id)
        if stored != state.value:
            self.unstored.append(f"{how} reported {job_id} {state.value}, the database had {stored}")

    async def wait(self, jobs: JobManager, job_id: str, *, patient: bool = False) -> None:
        while True:
            try:
                info = await jobs.wait(job_id)
                break
            except StoreError:  # its read found the database away: what a user would do
                if not patient:
                    raise
                self.refused += 1
        assert info is not None
        self.check(job_id, info.state, "wait")
        self.waited[job_id] = info.state.value

    async def follow(self, jobs: JobManager, ready: anyio.Event) -> None:
        events = jobs.events()
        ready.set()
        async for event in events:
            if event.state.is_done:
                self.check(event.job_id, event.state, "events")
                self.ended[event.job_id] = event.state.value


@contextlib.asynccontextmanager
async def _manager(engine: Engine, reports: Reports) -> AsyncIterator[tuple[JobManager, anyio.abc.TaskGroup]]:
    store = engine.store()
    try:
        async with JobManager(store) as jobs, anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(reports.follow, jobs, ready)
            await ready.wait()
            yield jobs, tg
    finally:
        store.close()


async def test_the_database_away_while_jobs_run_and_end(engine: Engine, hooks: StoreEvents) -> None:
    reports = Reports(engine)
    gates = [anyio.Event(), anyio.Event()]
    started: set[str] = set()
    returned: set[str] = set()

    async def work(ctx: Context) -> str:
        started.add(ctx.id)
        half = ctx.params
        await gates[half].wait()
        ctx.set_progress(0.5, "halfway")
        await anyio.lowlevel.checkpoint()
        returned.add(ctx.id)
        return f"done {half}"

    async with _manager(engine, reports) as (jobs, tg):
        jobs.register(work, "work")
        refs = [await jobs.submit("work", i % 2) for i in range(6)]
        ids = [ref.id for ref in refs]
        for job_id in ids:
            tg.start_soon(reports.wait, jobs, job_id)
        await _until(lambda: len(started) == 6, "all six running")
        for job_id in ids:
            await jobs.get(job_id)  # their starts are in the store

        engine.away()
        gates[0].set()  # three end while the database is away
        first = ids[0::2]
        await _until(lambda: returned.issuperset(first), "the first three returned")
        with pytest.raises(StoreError):  # a read needs the store to hold their ends
            await jobs.get(first[0])
        with pytest.raises(StoreError):
            await jobs.submit("work", 1)
        assert hooks.names == [UNAVAILABLE]
        assert reports.waited == {}  # nothing reported: nothing stored
        assert reports.ended == {}
        assert [engine.stored(job_id) for job_id in ids] == ["running"] * 6
        assert await jobs.status(ids[1]) is State.RUNNING  # the others go on

        engine.back()
        await _until(lambda: set(reports.waited) == set(first), "the first three reported once stored")
        gates[1].set()  # the others, running all along, end now
        await _until(lambda: len(reports.waited) == 6 and len(reports.ended) == 6, "all six reported")
        infos = [await jobs.get(job_id) for job_id in ids]
        tg.cancel_scope.cancel()
    assert reports.unstored == []
    assert [(info.state, info.result, info.progress) for info in infos if info] == [
        (State.SUCCEEDED, f"done {i % 2}", 0.5) for i in range(6)
    ]
    assert hooks.names == [UNAVAILABLE, AVAILABLE]


@pytest.mark.postgres
async def test_connections_killed_again_and_again_while_jobs_run_and_end(tmp_path: pathlib.Path) -> None:
    engine = Engine("postgres", tmp_path)
    outage = engine.outage
    assert outage is not None
    hooks = StoreEvents()
    instrumentation.set_hooks([hooks])
    reports = Reports(engine)
    count = 120
    rng = random.Random(7)  # noqa: S311 - a test's random moments, not secrets
    try:
        async with _manager(engine, reports) as (jobs, tg):

            async def work(ctx: Context) -> int:
                for step in range(3):
                    ctx.set_progress(step / 3)
                    await anyio.sleep(rng.uniform(0, 0.3))
                return int(ctx.params)

            jobs.register(work, "work")
            ids = []
            for i in range(count):
                ref = await jobs.submit("work", i)
                ids.append(ref.id)
                tg.start_soon(functools.partial(reports.wait, jobs, ref.id, patient=True))
            kills = 0
            for _ in range(8):  # from a second connection, at random moments while jobs run and end
                await anyio.sleep(rng.uniform(0.05, 0.25))
                kills += outage.kill() > 0
            await _until(lambda: len(reports.waited) == count, "every end reported by wait", 30)
            await _until(lambda: len(reports.ended) == count, "every end told to events")
            tg.cancel_scope.cancel()
        assert kills >= 3
        assert reports.unstored == []
        assert set(reports.waited.values()) == {"succeeded"}
        assert [engine.stored(job_id) for job_id in ids] == ["succeeded"] * count
        # Each time the database was lost and came back, told once each way.
        assert hooks.names == [UNAVAILABLE, AVAILABLE] * (len(hooks.names) // 2)
    finally:
        engine.close()


@pytest.mark.postgres
async def test_back_from_an_outage_longer_than_the_lease_nobody_is_taken_for_lost() -> None:
    # Two managers lose the database for longer than their lease: by the database's clock
    # both leases ran out. The first one back must not resolve the other's running job as
    # lost while that one is on its way back too (here 0.8 s later, well within a lease):
    # back, a manager renews its own lease and resolves nobody's jobs for a whole lease.
    import psycopg

    from conftest import POSTGRES_DSN

    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
    instrumentation.set_hooks([])
    gate = anyio.Event()
    started: set[str] = set()

    async def work(ctx: Context) -> str:
        started.add(ctx.id)
        await gate.wait()
        return "done"

    outages = [PostgresOutage(), PostgresOutage()]  # one role per manager: each cut off alone
    stores = [PostgresStore(outage.dsn, schema=schema, connect_timeout=2) for outage in outages]
    try:
        await stores[0].open()  # the tables, the first role's; the second acts as a member of it
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
            admin.execute(f'GRANT "{outages[0].role}" TO "{outages[1].role}"')  # type: ignore[arg-type]
        async with JobManager(stores[0], lease=3) as one, JobManager(stores[1], lease=3) as two:
            for jobs in (one, two):
                jobs.register(work, "work")
            refs = [await one.submit("work"), await two.submit("work")]
            await _until(lambda: len(started) == 2, "both running")
            for ref in refs:
                await one.get(ref.id)  # their starts are in the store
            for outage in outages:
                outage.away()
            await anyio.sleep(4.0)  # real time: both leases (3 s) run out meanwhile
            outages[0].back()
            await anyio.sleep(0.8)
            outages[1].back()
            await _until(lambda: not any(store.availability.away for store in stores), "both back")
            await anyio.sleep(3.5)  # real time: past the first one's whole lease back
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
                rows = admin.execute(f'SELECT state FROM "{schema}".anyjob_jobs ORDER BY id').fetchall()  # type: ignore[arg-type]  # noqa: S608
            assert [row[0] for row in rows] == ["running", "running"]
            gate.set()
            infos = [await one.wait(ref.id, timeout=10) for ref in refs]
    finally:
        for store in stores:
            store.close()
        drop_postgres_schemas([schema])
        for outage in outages:
            outage.close()
    assert [(info.state, info.result) for info in infos if info] == [(State.SUCCEEDED, "done")] * 2
