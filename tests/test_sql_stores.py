"""SQLiteStore and PostgresStore on their own: durability, queries, statistics, cancel requests,
cleanup, the change feed.

The manager's whole test suite also runs over both (tests/test_manager.py); these
tests cover what only a durable store has: records outliving the store object,
and managers on separate store objects (as in separate processes) seeing each
other's jobs through the database. ``open_store()`` opens another store object
on the same database (the same file, the same PostgreSQL schema).
"""

from __future__ import annotations

import contextlib
import math
import pathlib
import threading
import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import pytest

import anyjob
from anyjob import Context, JobError, JobManager, State, instrumentation
from anyjob.stores import JobQuery, JobRecord, PostgresStore, RecordUpdate, SQLiteStore, Store, StoreChange
from anyjob.stores._connection import SCHEMA_VERSION
from conftest import POSTGRES_DSN, drop_postgres_schemas

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _quiet() -> None:
    instrumentation.set_hooks([])


OpenStore = Callable[..., "SQLiteStore | PostgresStore"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[OpenStore]:
    """Opens store objects on one database: what separate processes would each have."""
    opened: list[SQLiteStore | PostgresStore] = []
    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"

    def open_store(poll_interval: float = 0.01) -> SQLiteStore | PostgresStore:
        store: SQLiteStore | PostgresStore
        if request.param == "sqlite":
            store = SQLiteStore(tmp_path / "jobs.db", poll_interval=poll_interval)
        else:
            store = PostgresStore(POSTGRES_DSN, schema=schema, poll_interval=poll_interval)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()
    if request.param == "postgres":
        drop_postgres_schemas([schema])


def record(job_id: str, **fields: Any) -> JobRecord:
    values: dict[str, Any] = {
        "id": job_id,
        "name": "job",
        "state": State.CREATED,
        "labels": {},
        "params": None,
        "priority": 0,
        "created": 1_700_000_000.0,
        "scheduled": 1_700_000_000.0,
        "owner": "manager-a",
        "function": "fn",
    }
    values.update(fields)
    return JobRecord(**values)


def test_arguments_are_checked(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TypeError, match="path"):
        SQLiteStore(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        SQLiteStore("")
    with pytest.raises(TypeError, match="poll_interval"):
        SQLiteStore(tmp_path / "a.db", poll_interval="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        SQLiteStore(tmp_path / "a.db", poll_interval=0)
    store = SQLiteStore(tmp_path / "a.db")
    assert isinstance(store, Store)
    assert store.path == str(tmp_path / "a.db")
    assert "a.db" in repr(store)


async def test_records_outlive_the_store_object(open_store: OpenStore) -> None:
    first = open_store()
    rec = record(
        "j1",
        labels={"team": "data", "kind": "import"},
        params={"rows": [1, 2.5, "x", None, True], "nested": {"a": []}},
        result=None,
    )
    await first.insert(rec)
    assert await first.apply(
        [RecordUpdate("j1", {"state": State.SUCCEEDED, "result": {"ok": [1]}, "started": 5.0, "ended": 6.5})],
        origin="manager-a",
    ) == [True]
    first.close()

    again = open_store()
    copy = await again.get_record("j1")
    assert copy is not None
    assert copy.state is State.SUCCEEDED
    assert dict(copy.labels) == {"team": "data", "kind": "import"}
    assert copy.params == {"rows": [1, 2.5, "x", None, True], "nested": {"a": []}}
    assert copy.result == {"ok": [1]}
    assert (copy.started, copy.ended, copy.owner, copy.function) == (5.0, 6.5, "manager-a", "fn")
    info = await again.get("j1")
    assert info is not None
    assert info.duration == 1.5
    assert await again.get("missing") is None
    assert await again.get_record("missing") is None
    with pytest.raises(JobError, match="already exists"):
        await again.insert(record("j1"))
    again.close()


async def test_updates_apply_only_in_expected_states(open_store: OpenStore) -> None:
    store = open_store()
    await store.insert(record("j1"))
    applied = await store.apply(
        [
            RecordUpdate("j1", {"state": State.RUNNING}, frozenset({State.CREATED})),
            RecordUpdate("j1", {"state": State.FAILED}, frozenset({State.CREATED})),  # not CREATED any more
            RecordUpdate("nope", {"state": State.FAILED}),
            RecordUpdate("j1", {"owner": "manager-b"}),
        ],
        origin="a",
    )
    assert applied == [True, False, False, True]
    copy = await store.get_record("j1")
    assert copy is not None
    assert (copy.state, copy.owner) == (State.RUNNING, "manager-b")
    with pytest.raises(ValueError, match="cannot update"):
        await store.apply([RecordUpdate("j1", {"no_such_field": 1})], origin="a")
    with pytest.raises(ValueError, match="cannot update"):
        await store.apply([RecordUpdate("j1", {"id": "other"})], origin="a")
    assert await store.apply([], origin="a") == []


async def test_queries_filter_and_page_newest_first(open_store: OpenStore) -> None:
    store = open_store()
    base = 1_700_000_000.0
    for i in range(12):
        await store.insert(
            record(
                f"j{i:02}",
                name="even" if i % 2 == 0 else "odd",
                state=State.SUCCEEDED if i < 6 else State.CREATED,
                labels={"batch": str(i // 4), "all": "yes"},
                created=base + i,
            )
        )

    async def ids(**filters: Any) -> list[str]:
        return [info.id for info in await store.query(JobQuery(**filters))]

    assert await ids(limit=3) == ["j11", "j10", "j09"]
    assert await ids(limit=3, offset=3) == ["j08", "j07", "j06"]
    assert await ids(states=frozenset({State.SUCCEEDED}), limit=2) == ["j05", "j04"]
    assert await ids(states=frozenset()) == []
    assert await ids(name="odd", states=frozenset({State.CREATED})) == ["j11", "j09", "j07"]
    assert await ids(labels={"batch": "1", "all": "yes"}) == ["j07", "j06", "j05", "j04"]
    assert await ids(labels={"batch": "1", "all": "no"}) == []
    assert await ids(created_after=base + 9, created_before=base + 11) == ["j10"]


async def test_statistics_count_from_the_records(open_store: OpenStore) -> None:
    store = open_store()
    labeled = {"k": "v"}
    await store.insert(
        record("a", name="x", state=State.SUCCEEDED, started=1.0, ended=3.0, labels={"k": "v"})
    )
    await store.insert(record("b", name="x", state=State.FAILED, started=1.0, ended=2.0))
    await store.insert(record("c", name="y", state=State.RUNNING, started=1.0, labels=labeled))
    await store.insert(record("d", name="y", state=State.CREATED))
    stats = await store.statistics()
    assert stats.total == 4
    assert stats.by_state[State.SUCCEEDED] == 1
    assert stats.by_state[State.CANCELED] == 0
    assert set(stats.by_state) == set(State)
    assert stats.by_name == {"x": 2, "y": 2}
    assert stats.active == 2
    assert stats.success_rate == 0.5
    assert stats.average_duration == 1.5
    named = await store.statistics(name="y")
    assert (named.total, named.by_name, named.success_rate) == (2, {"y": 2}, 0.0)
    by_label = await store.statistics(labels=labeled)
    assert (by_label.total, by_label.by_name) == (2, {"x": 1, "y": 1})


async def test_cancel_requests_and_cleanup(open_store: OpenStore) -> None:
    store = open_store()
    await store.insert(record("waiting"))
    await store.insert(record("running", state=State.RUNNING))
    await store.insert(record("done", state=State.SUCCEEDED, ended=10.0))
    assert await store.request_cancel("waiting", origin="b") is State.CREATED
    assert await store.request_cancel("running", origin="b") is State.RUNNING
    assert await store.request_cancel("done", origin="b") is State.SUCCEEDED
    assert await store.request_cancel("missing", origin="b") is None
    waiting = await store.get_record("waiting")
    running = await store.get_record("running")
    assert waiting is not None
    assert running is not None
    assert (waiting.state, waiting.cancel_requested, waiting.ended is not None) == (
        State.CANCELED,
        True,
        True,
    )
    assert (running.state, running.cancel_requested) == (State.RUNNING, True)
    assert await store.delete_finished(5.0) == 0
    assert await store.delete_finished(11.0) == 1  # "done" ended at 10; "waiting" ended just now
    assert await store.get("done") is None
    assert await store.get("waiting") is not None
    assert (await store.statistics()).total == 2


async def test_feeds_see_other_writers_through_the_database(open_store: OpenStore) -> None:
    mine = open_store()
    other = open_store()  # as another process would
    await mine.open()  # the feed starts at the change log's position open() read
    feed = mine.subscribe("manager-a")
    await other.insert(record("j1", owner="manager-b"))
    await mine.insert(record("j2", owner="manager-a"))  # its own: not reported
    await other.request_cancel("j1", origin="manager-b")
    seen: list[tuple[str, State | None, bool]] = []
    async with contextlib.aclosing(cast("AsyncGenerator[list[StoreChange], None]", aiter(feed))) as batches:
        with anyio.fail_after(5):
            async for changes in batches:
                seen.extend((c.job_id, c.info and c.info.state, c.cancel_requested) for c in changes)
                if ("j1", State.CANCELED, True) in seen:
                    break
        assert all(job_id == "j1" for job_id, _, _ in seen)
        assert await other.delete_finished(datetime.now(UTC).timestamp() + 1) == 1
        with anyio.fail_after(5):
            async for changes in batches:
                if any(c.job_id == "j1" and c.info is None for c in changes):
                    break
    feed.close()
    assert [changes async for changes in feed] == []  # closed: the iterator ends


async def test_managers_on_separate_store_objects_share_jobs(open_store: OpenStore) -> None:
    # Two store objects on one database: what two processes have.
    entered = anyio.Event()

    async def hang(ctx: Context) -> None:
        entered.set()
        await anyio.sleep_forever()

    async with (
        JobManager(open_store()) as a,
        JobManager(open_store()) as b,
    ):
        seen_by_b = b.events()
        ref = await a.submit(hang, labels={"from": "a"})
        await entered.wait()
        with anyio.fail_after(5):
            async for event in seen_by_b:  # b learns of a's writes through the file
                if event.job_id == ref.id and event.state is State.RUNNING:
                    break
        seen_by_b.close()
        assert await b.status(ref.id) is State.RUNNING
        assert [info.id for info in await b.list(labels={"from": "a"})] == [ref.id]
        async with anyio.create_task_group() as tg:
            results: list[anyjob.JobInfo | None] = []

            async def wait_in_b() -> None:
                with anyio.fail_after(5):
                    results.append(await b.wait(ref.id))

            tg.start_soon(wait_in_b)
            assert await b.cancel(ref.id) is True  # reaches the job running under a, through the file
        assert results[0] is not None
        assert results[0].state is State.CANCELED
    reopened = open_store()
    final = await reopened.get(ref.id)
    assert final is not None
    assert final.state is State.CANCELED
    assert final.ended_at is not None
    assert final.ended_at > datetime.now(UTC) - timedelta(minutes=1)


async def test_a_database_from_a_newer_anyjob_is_refused(tmp_path: pathlib.Path) -> None:
    import sqlite3

    path = tmp_path / "jobs.db"
    store = SQLiteStore(path)
    await store.insert(record("j1"))
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    newer = SQLiteStore(path)
    with pytest.raises(JobError, match="version 99"):
        await newer.get("j1")
    with pytest.raises(JobError, match="version 99"):  # still refused: nothing half-open is kept
        await newer.get("j1")


async def test_the_change_log_forgets_old_changes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from anyjob.stores import _sql

    path = tmp_path / "jobs.db"
    store = SQLiteStore(path)
    now = [1_000_000.0]
    monkeypatch.setattr("anyjob.stores._changes.time.time", lambda: now[0])
    await store.insert(record("old"))  # trims (nothing yet), logs one change at t
    now[0] += _sql._CHANGES_KEPT_FOR + _sql._TRIM_EVERY + 1
    await store.insert(record("new"))  # more than a minute later: trims what is over ten minutes old
    store.close()
    conn = sqlite3.connect(path)
    assert [row[0] for row in conn.execute("SELECT job_id FROM anyjob_changes")] == ["new"]
    conn.close()


def test_postgres_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="dsn"):
        PostgresStore(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dsn"):
        PostgresStore("")
    with pytest.raises(TypeError, match="schema"):
        PostgresStore(POSTGRES_DSN, schema=None)  # type: ignore[arg-type]
    for bad in ["", "Upper", "has-dash", "1starts_with_digit", 'quote"d', "x" * 64]:
        with pytest.raises(ValueError, match="schema"):
            PostgresStore(POSTGRES_DSN, schema=bad)
    with pytest.raises(ValueError, match="poll_interval"):
        PostgresStore(POSTGRES_DSN, poll_interval=-1)
    store = PostgresStore(POSTGRES_DSN, schema="jobs_2")
    assert isinstance(store, Store)
    assert store.schema == "jobs_2"
    assert "jobs_2" in repr(store)


@pytest.mark.postgres
async def test_postgres_tables_from_a_newer_anyjob_are_refused() -> None:
    import psycopg

    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
    store = PostgresStore(POSTGRES_DSN, schema=schema)
    try:
        await store.insert(record("j1"))
        store.close()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"UPDATE \"{schema}\".anyjob_meta SET value = '99' WHERE key = 'schema_version'")  # noqa: S608
        with pytest.raises(JobError, match="version 99"):
            await store.get("j1")
    finally:
        store.close()
        drop_postgres_schemas([schema])


# -- leases and shared work across store objects, from threads ------------------------------------


def _in_threads(*calls: Callable[[], None]) -> None:
    """Run each call in its own thread, all at once; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], None]) -> None:
        try:
            start.wait()
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]


def test_claims_from_threads_on_separate_store_objects_take_each_record_once(open_store: OpenStore) -> None:
    count = 600
    setup = open_store()

    async def insert() -> None:
        for i in range(count):
            await setup.insert(record(f"j{i:04}", owner="", priority=i % 4))

    anyio.run(insert)
    got: dict[str, list[str]] = {}

    def claimer(origin: str) -> Callable[[], None]:
        store = open_store()  # another process's own connection to the database
        anyio.run(store.renew_lease, origin, 60.0)  # connected before the race
        got[origin] = []

        async def claim() -> None:
            while taken := await store.claim_waiting(["fn"], origin=origin, limit=5, grace=math.inf):
                got[origin].extend(each.id for each in taken)
                await anyio.sleep(0.001)  # a manager starting them: the others get their turn

        return lambda: anyio.run(claim)

    _in_threads(*(claimer(f"m{i}") for i in range(3)))
    everything = [job_id for ids in got.values() for job_id in ids]
    assert len(everything) == len(set(everything)) == count
    assert sum(bool(ids) for ids in got.values()) >= 2

    async def owners() -> dict[str, str]:
        return {
            info.id: copy.owner
            for info in await setup.query(JobQuery(limit=1000))
            if (copy := await setup.get_record(info.id)) is not None
        }

    stored = anyio.run(owners)
    assert all(stored[job_id] == origin for origin, ids in got.items() for job_id in ids)


def test_recovery_from_threads_resolves_each_job_once(open_store: OpenStore) -> None:
    setup = open_store()

    async def prepare() -> None:
        for i in range(200):
            await setup.insert(record(f"r{i:03}", owner="lost", state=State.RUNNING, started=1.0))
        await setup.renew_lease("lost", 0.05)
        await anyio.sleep(0.3)

    anyio.run(prepare)
    found: dict[str, list[str]] = {}

    def recoverer(origin: str) -> Callable[[], None]:
        store = open_store()

        async def recover() -> None:
            found[origin] = await store.recover_lost(origin=origin, resumable=["fn"] if origin == "a" else [])

        return lambda: anyio.run(recover)

    _in_threads(recoverer("a"), recoverer("b"))
    [winner] = [origin for origin, ids in found.items() if ids]  # one transaction did it all
    assert sorted(found[winner]) == [f"r{i:03}" for i in range(200)]
    stats = anyio.run(setup.statistics)
    expected = State.CREATED if winner == "a" else State.FAILED
    assert stats.by_state[expected] == 200


def test_sqlite_reads_waiting_and_lost_records_through_their_indexes(tmp_path: pathlib.Path) -> None:
    """On a file without statistics (no ANALYZE), as anyjob makes them."""
    from anyjob.stores import _sql_leases

    store = SQLiteStore(tmp_path / "jobs.db")
    try:
        anyio.run(store.open)
        conn = store._connection()  # the store's own (nothing else runs on it here)
        where, params = _sql_leases.waiting(conn, ["fn", "other"], "me", 1e9, 30.0)
        lost = f"SELECT id FROM anyjob_jobs WHERE owner IN (?, ?) AND {_sql_leases._LIVE}"  # noqa: S608
        for sql, values, index in [
            (f"SELECT * {where}{_sql_leases.CLAIM_ORDER} LIMIT ?", (*params, 16), "anyjob_jobs_waiting"),
            (f"SELECT 1 AS found {where} LIMIT 1", params, "anyjob_jobs_waiting"),
            (lost, ("x", "y"), "anyjob_jobs_live_by_owner"),
        ]:
            plan = " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", values))
            assert f"anyjob_jobs USING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
    finally:
        store.close()
