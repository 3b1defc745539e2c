"""Edges of managers sharing one store (issue 8): waits and event streams of a job deleted before the
other manager reads the feed, cancel asked twice elsewhere, ``canceled_elsewhere`` through the hooks,
and a stored cancel request winning over the owner's end write.

"Another process" is a manager over a second store object on the same database (the same SQLite
file, the same PostgreSQL schema), as in tests/test_sql_stores.py; "the same store" can also be one
MemoryStore object shared by two managers.

Each test names, in its docstring, the defect of issue 8 it covers; each failed against the
manager as it was before the rebuild (f2b408b), except where a docstring says it is a guard.
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
import structlog.testing

from anyjob import Context, JobManager, State, instrumentation
from anyjob.instrumentation import HookEvent
from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore
from conftest import POSTGRES_DSN, drop_postgres_schemas

pytestmark = pytest.mark.anyio

#: Seconds between the polls of the *waiting* manager's store: long against the few
#: milliseconds between a job's end and its deletion, so the deletion is what it reads.
SLOW_POLL = 1.0

OpenStore = Callable[..., Any]


@pytest.fixture(autouse=True)
def _quiet() -> None:
    instrumentation.set_hooks([])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[OpenStore]:
    """Opens store objects on one database: what separate processes each have."""
    opened: list[SQLiteStore | PostgresStore] = []
    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"

    def open_store(poll_interval: float = 0.02) -> SQLiteStore | PostgresStore:
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


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_pair(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Callable[..., Any]]:
    """``pair(owner_poll, other_poll)``: two stores over the same records (one MemoryStore object
    twice, or two store objects on one database), for an owning manager and another one."""
    opened: list[SQLiteStore | PostgresStore] = []
    schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"

    def pair(owner_poll: float = 0.02, other_poll: float = 0.02) -> tuple[Any, Any]:
        if request.param == "memory":
            shared = MemoryStore()
            return shared, shared
        stores: list[SQLiteStore | PostgresStore] = []
        for poll in (owner_poll, other_poll):
            if request.param == "sqlite":
                stores.append(SQLiteStore(tmp_path / "jobs.db", poll_interval=poll))
            else:
                stores.append(PostgresStore(POSTGRES_DSN, schema=schema, poll_interval=poll))
        opened.extend(stores)
        return stores[0], stores[1]

    yield pair
    for store in opened:
        store.close()
    if request.param == "postgres":
        drop_postgres_schemas([schema])


def _gated(go: anyio.Event, started: anyio.Event) -> Callable[[Context], Any]:
    async def gated(ctx: Context) -> str:
        started.set()
        with anyio.fail_after(5):
            await go.wait()
        return "finished"

    return gated


async def _until_stored_running(store: Any, job_id: str) -> None:
    """Until the store itself says RUNNING (the owner's write of the start is in)."""
    with anyio.fail_after(5):
        while True:
            info = await store.get(job_id)
            if info is not None and info.state is State.RUNNING:
                return
            await anyio.sleep(0.002)


async def _end_and_delete(owner: JobManager, job_id: str, go: anyio.Event, how: str) -> None:
    """Let the job end in *owner*, then have it deleted (cleanup, or the owner's retention)."""
    go.set()
    with anyio.fail_after(5):
        ended = await owner.wait(job_id)
    assert ended is not None
    assert ended.state is State.SUCCEEDED
    if how == "cleanup":
        assert await owner.cleanup(0) == 1
    else:
        with anyio.fail_after(5):
            while await owner.get(job_id) is not None:  # noqa: ASYNC110 - no event announces a deletion
                await anyio.sleep(0.005)


# -- a job deleted before the other manager reads the feed ------------------------------------------


@pytest.mark.parametrize("how", ["cleanup", "retention"])
async def test_wait_elsewhere_returns_the_end_of_a_job_deleted_meanwhile(
    open_store: OpenStore, how: str
) -> None:
    """Issue 8: "Cross-process ``wait(id)`` ... miss a job that ends and is deleted (retention or
    ``cleanup``) between two reads of the change feed: ``wait(timeout=3)`` returns stale CREATED
    info after 3 s". The other manager's wait returns the final info, done, well before 3 s."""
    go, started = anyio.Event(), anyio.Event()
    retention = 0.01 if how == "retention" else None
    async with (
        JobManager(open_store(), retention=retention) as owner,
        JobManager(open_store(poll_interval=SLOW_POLL)) as other,
    ):
        ref = await owner.submit(_gated(go, started))
        await started.wait()
        results: list[Any] = []

        async def wait_elsewhere() -> None:
            results.append(await other.wait(ref.id, timeout=3))
            results.append(anyio.current_time())

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_elsewhere)
            await anyio.sleep(0.3)  # margin: the other manager has read the record (RUNNING) by now
            begin = anyio.current_time()
            await _end_and_delete(owner, ref.id, go, how)
        info, woke = results
        assert info is not None
        assert info.state is State.SUCCEEDED, f"wait() returned stale {info.state.name} info"
        assert woke - begin < 2.5, "wait() only returned at its timeout"


async def test_wait_elsewhere_without_timeout_returns_for_a_job_deleted_meanwhile(
    open_store: OpenStore,
) -> None:
    """Issue 8: "... ``wait()`` without a timeout hangs until the manager closes" when the job ends
    and is deleted before the waiting manager reads the feed. It returns the final info."""
    go, started = anyio.Event(), anyio.Event()
    async with (
        JobManager(open_store()) as owner,
        JobManager(open_store(poll_interval=SLOW_POLL)) as other,
    ):
        ref = await owner.submit(_gated(go, started))
        await started.wait()
        results: list[Any] = []

        async def wait_elsewhere() -> None:
            results.append(await other.wait(ref.id))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_elsewhere)
                await anyio.sleep(0.3)  # margin: the other manager has read the record by now
                await _end_and_delete(owner, ref.id, go, "cleanup")
        assert results[0] is not None
        assert results[0].state is State.SUCCEEDED


async def test_events_elsewhere_deliver_the_end_of_a_job_deleted_meanwhile(open_store: OpenStore) -> None:
    """Issue 8: "Cross-process ... ``events(id)`` miss a job that ends and is deleted ... between two
    reads of the change feed". The other manager's stream for that job delivers its end."""
    go, started = anyio.Event(), anyio.Event()
    async with (
        JobManager(open_store()) as owner,
        JobManager(open_store(poll_interval=SLOW_POLL)) as other,
    ):
        job_id = f"deleted-{uuid.uuid4().hex}"
        stream = other.events(job_id)
        await owner.submit(_gated(go, started), id=job_id)
        await started.wait()
        await _end_and_delete(owner, job_id, go, "cleanup")
        seen: list[State] = []
        with anyio.fail_after(3):
            async for event in stream:
                seen.append(event.state)
                if event.state.is_done:
                    break
        stream.close()
        assert seen[-1] is State.SUCCEEDED, f"the stream saw {[s.name for s in seen]}"


# -- cancel asked twice from another manager ------------------------------------------------------------


async def test_cancel_twice_from_another_manager_answers_true_then_false(store_pair: Any) -> None:
    """Issue 8: "``cancel()`` twice from another manager returns True twice (the owner returns True,
    False)". The job is still unwinding (it holds on in a shielded scope) when the second call comes."""
    owner_store, other_store = store_pair(owner_poll=SLOW_POLL)
    started, release = anyio.Event(), anyio.Event()

    async def slow_to_stop(ctx: Context) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await release.wait()
            raise

    async with JobManager(owner_store) as owner, JobManager(other_store) as other:
        ref = await owner.submit(slow_to_stop)
        with anyio.fail_after(5):
            await started.wait()
        await _until_stored_running(other_store, ref.id)
        first = await other.cancel(ref.id)
        second = await other.cancel(ref.id)
        release.set()
        with anyio.fail_after(5):
            info = await other.wait(ref.id)
        assert (first, second) == (True, False)
        assert info is not None
        assert info.state is State.CANCELED


# -- canceled_elsewhere goes through the hooks ---------------------------------------------------------------


async def _cancel_a_waiting_job_elsewhere(owner_store: Any, other_store: Any) -> str:
    """The owner holds a waiting job (behind a blocker, max_concurrency=1); the other manager cancels
    it; the owner then lets its worker reach it. Returns the waiting job's id."""
    started, release = anyio.Event(), anyio.Event()

    async def blocker(ctx: Context) -> None:
        started.set()
        with anyio.fail_after(5):
            await release.wait()

    async def never(ctx: Context) -> None:
        pytest.fail("a job canceled while it waited ran")

    async with JobManager(owner_store, max_concurrency=1) as owner, JobManager(other_store) as other:
        await owner.submit(blocker)
        waiting = await owner.submit(never)
        with anyio.fail_after(5):
            await started.wait()
        assert await other.cancel(waiting.id) is True
        with anyio.fail_after(5):
            info = await other.wait(waiting.id)
        assert info is not None
        assert info.state is State.CANCELED
        with anyio.fail_after(5):
            while (await owner.status(waiting.id)) is not State.CANCELED:  # noqa: ASYNC110 - no event for it
                await anyio.sleep(0.005)
        release.set()  # the owner's worker now comes to the canceled job (and leaving waits for that)
    return waiting.id


async def test_canceled_elsewhere_is_silenced_by_set_hooks_empty(store_pair: Any) -> None:
    """Issue 8: "``anyjob.canceled_elsewhere`` is logged directly, ignoring ``set_hooks([])``". With the
    hooks silenced, structlog sees nothing."""
    instrumentation.set_hooks([])
    owner_store, other_store = store_pair()
    with structlog.testing.capture_logs() as logs:
        await _cancel_a_waiting_job_elsewhere(owner_store, other_store)
    assert logs == []


async def test_canceled_elsewhere_reaches_the_hooks(store_pair: Any) -> None:
    """Issue 8: "``anyjob.canceled_elsewhere`` is logged directly" instead of through the hooks: a
    recording hook receives it, naming the job."""
    received: list[HookEvent] = []
    instrumentation.set_hooks([received.append])
    owner_store, other_store = store_pair()
    job_id = await _cancel_a_waiting_job_elsewhere(owner_store, other_store)
    elsewhere = [e for e in received if e.name == instrumentation.CANCELED_ELSEWHERE]
    assert [e.job_id for e in elsewhere] == [job_id], f"hooks got {[e.name for e in received]}"


# -- a stored cancel request wins over a later end write -----------------------------------------------------


async def test_a_cancel_from_elsewhere_wins_over_the_owners_later_end_write(open_store: OpenStore) -> None:
    """Issue 8: "A cancel from another process returns True, yet the job ends SUCCEEDED when it
    finishes before the owner's next read of the feed ... the owner's final write ignores the stored
    cancel request". The job finishes right after the other manager's cancel returned True: it ends
    CANCELED in the store and in both managers' wait(), 20 times out of 20."""
    reader = open_store()  # a third process, reading the database itself
    async with (
        JobManager(open_store(poll_interval=0.2)) as owner,
        JobManager(open_store()) as other,
    ):
        outcomes: list[tuple[State | None, State | None, State | None]] = []
        for _ in range(20):
            go, started = anyio.Event(), anyio.Event()
            ref = await owner.submit(_gated(go, started))
            with anyio.fail_after(5):
                await started.wait()
            await _until_stored_running(reader, ref.id)
            assert await other.cancel(ref.id) is True
            go.set()  # the job returns normally, most likely before its owner reads the feed
            with anyio.fail_after(5):
                in_owner = await owner.wait(ref.id)
                in_other = await other.wait(ref.id)
            stored = await reader.get(ref.id)
            outcomes.append(
                (
                    None if stored is None else stored.state,
                    None if in_owner is None else in_owner.state,
                    None if in_other is None else in_other.state,
                )
            )
        wrong = [o for o in outcomes if o != (State.CANCELED,) * 3]
        assert not wrong, f"{len(wrong)} of 20 did not end CANCELED everywhere: (store, owner, other) {wrong}"
