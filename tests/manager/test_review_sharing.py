"""Review of the sharing fixes of 2d07bdf: a job another manager canceled and retried ("took over").

Manager A submits a job; manager B, on the same records, cancels it and retries it, so the job is
B's now. The tests named ``test_defect_*`` failed against 2d07bdf and are fixed since (regression
tests): each docstring says what a user saw, then what should happen. The others pin down
behaviour that was right. Two defects still open are kept in tests/pending/review_sharing_open.py.txt.

Races are made deterministic by stores, never by sleeps:

* :class:`LateStore` (and, over one shared MemoryStore, :func:`late_subscriber`): A's change feed
  is read for the first time once ``hear`` is set, and then tells each job as it is at that read
  (the latest change wins, as every feed coalesces). It stands for an SQL store's poll interval,
  or for a follower task the event loop runs after B's worker (a busy B: a worker spinning on
  its checkpoint runs before A's follower).
* :class:`HeldStartStore`: A's first write of a job's start (its RUNNING flush) waits until the
  test releases it: a database answering the claim, then slow on the next transaction.

A time bound appears only where the defect is a hang (a call that never returns).
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.conftest import POSTGRES_DSN, DelegatingStore, drop_postgres_schemas
from tests.manager.support import Gates, MakeStore, ok, until
from tests.manager.test_adversarial import check_closed, stored

from anyjob import Context, JobManager, State
from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore
from anyjob.stores._base import StoreChange, StoreFeed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]

#: How long a call that should return at once (its job ended) may take before it counts as hung.
HANG = 3.0


# -- stores that make the races deterministic -------------------------------------------------------


class LateFeed:
    """Reads nothing of *feed* until *hear* is set; then every change since, each job as it is now."""

    def __init__(self, feed: StoreFeed, hear: anyio.Event) -> None:
        self._feed = feed
        self._hear = hear

    def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[StoreChange]]:
        await self._hear.wait()
        batches = aiter(self._feed)
        try:
            async for changes in batches:
                yield changes
        finally:
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    def close(self) -> None:
        self._feed.close()


class LateStore(DelegatingStore):
    """*inner*, shared with other managers; its manager hears of their changes once ``hear`` is set."""

    def __init__(self, inner: Any, hear: anyio.Event) -> None:
        super().__init__(inner)
        self.hear = hear

    def subscribe(self, origin):  # type: ignore[no-untyped-def]
        return LateFeed(self.inner.subscribe(origin), self.hear)


def late_subscriber(store: MemoryStore, hear: anyio.Event, *, after: int = 0) -> None:
    """The manager subscribing to *store* (a shared MemoryStore) after *after* others hears late."""
    subscribe = store.subscribe
    seen = 0

    def late(origin: str) -> Any:
        nonlocal seen
        seen += 1
        if seen <= after:
            return subscribe(origin)
        del store.subscribe  # the next managers subscribe as usual
        return LateFeed(subscribe(origin), hear)

    store.subscribe = late  # type: ignore[method-assign]


class HeldStartStore(DelegatingStore):
    """*inner*; the first write of a job's start (state RUNNING) waits for ``release``."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.held = anyio.Event()
        self.release = anyio.Event()

    async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
        if not self.held.is_set() and any(u.fields.get("state") is State.RUNNING for u in updates):
            self.held.set()
            await self.release.wait()
        return await super().apply(updates, origin=origin)


class Pairs:
    """Two ways to the same records: manager A's, then manager B's (made inside the test)."""

    def __init__(self, kind: str, tmp_path: pathlib.Path) -> None:
        self.kind = kind
        self._tmp_path = tmp_path
        self._schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
        self.opened: list[SQLiteStore | PostgresStore] = []

    def _sql(self) -> SQLiteStore | PostgresStore:
        store: SQLiteStore | PostgresStore
        if self.kind == "sqlite":
            store = SQLiteStore(self._tmp_path / "jobs.db", poll_interval=0.02)
        else:
            store = PostgresStore(POSTGRES_DSN, schema=self._schema, poll_interval=0.02)
        self.opened.append(store)
        return store

    def raw(self) -> tuple[Any, Any]:
        """(A's store, B's store): one MemoryStore twice, a MemoryStore behind the protocol, or SQL."""
        if self.kind == "memory":
            shared = MemoryStore()
            return shared, shared
        if self.kind == "protocol":
            inner = MemoryStore()
            return DelegatingStore(inner), DelegatingStore(inner)
        return self._sql(), self._sql()

    def late(self) -> tuple[Any, Any, anyio.Event]:
        """(A's store, B's store, hear): A hears of B's changes once ``hear`` is set."""
        hear = anyio.Event()
        if self.kind == "memory":
            shared = MemoryStore()
            late_subscriber(shared, hear)
            return shared, shared, hear
        if self.kind == "protocol":
            inner = MemoryStore()
            return LateStore(inner, hear), DelegatingStore(inner), hear
        return LateStore(self._sql(), hear), self._sql(), hear

    def close(self) -> None:
        for store in self.opened:
            store.close()
        if self.kind == "postgres":
            drop_postgres_schemas([self._schema])


_KINDS = ["memory", "protocol", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_BATCHED = ["protocol", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_KINDS)
def pairs(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Pairs]:
    made = Pairs(request.param, tmp_path)
    yield made
    made.close()


@pytest.fixture(params=_BATCHED)
def batched_pairs(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Pairs]:
    """:func:`pairs` over the stores a manager writes in batches (and claims jobs in)."""
    made = Pairs(request.param, tmp_path)
    yield made
    made.close()


class Calls:
    """A job function per manager, registered under one name: which manager ran it, how many at once."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.entered: dict[str, anyio.Event] = {}
        self.release = anyio.Event()
        self.running = 0
        self.max_running = 0

    def fn(self, manager: str) -> Callable[[Context], Any]:
        entered = self.entered[manager] = anyio.Event()

        async def work(ctx: Context) -> str:
            self.calls.append(manager)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            try:
                entered.set()
                await self.release.wait()
            finally:
                self.running -= 1
            return manager

        return work


async def take_over(a: JobManager, b: JobManager, job_id: str) -> None:
    """B cancels A's waiting job (True), then retries it: the job is B's to run now."""
    assert await b.cancel(job_id) is True
    await b.retry(job_id)


# -- defects ----------------------------------------------------------------------------------------


async def test_defect_wait_on_the_first_owner_hangs_when_the_job_it_lost_ends_elsewhere(pairs: Pairs) -> None:
    """A waits for its job; B takes it over and runs it to the end before A hears of any of it.
    A's ``wait(id)`` never returns (no timeout given): the one change A reads tells the end, and
    the follower drops A's entry on it (batched stores: ``taken_elsewhere`` then returns) or
    ignores it (a shared MemoryStore: the shared record is not CREATED any more, so A's entry is
    kept until A's worker drops it, silently). Should return the info B's run ended with."""
    store_a, store_b, hear = pairs.late()
    work = Calls()
    gate = Gates()
    async with JobManager(store_a, max_concurrency=1) as a, JobManager(store_b) as b:
        a.register(work.fn("a"), "work")
        b.register(work.fn("b"), "work")
        await a.submit(gate, "block")
        await gate.wait_entered("block")
        ref = await a.submit("work")
        returned = anyio.Event()
        results: list[Any] = []

        async def wait_in_a() -> None:
            results.append(await a.wait(ref.id))
            returned.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_in_a)
            await until(lambda: a._statistics().waiters == 1)
            await take_over(a, b, ref.id)
            work.release.set()
            ended = await b.wait(ref.id)
            assert ended is not None
            assert ended.state is State.SUCCEEDED
            hear.set()
            gate.open("block")  # A's worker meets what is left of its entry
            await until(lambda: a._statistics().live == 0)
            with anyio.move_on_after(HANG):
                await returned.wait()
            tg.cancel_scope.cancel()
        assert [None if i is None else i.state for i in results] == [State.SUCCEEDED], (
            f"a.wait(id) still waiting {HANG} s after the job ended under B"
        )
        assert work.calls == ["b"]
    await check_closed(a)
    await check_closed(b)


async def test_defect_events_on_the_first_owner_miss_the_end_of_the_job_it_lost(pairs: Pairs) -> None:
    """A subscribes to its job's events; B takes it over and runs it to the end before A hears.
    A's stream never shows the end (nor anything of B's run): the follower drops or ignores
    the change while A still has its entry, and nothing publishes it. Should deliver SUCCEEDED."""
    store_a, store_b, hear = pairs.late()
    work = Calls()
    gate = Gates()
    async with JobManager(store_a, max_concurrency=1) as a, JobManager(store_b) as b:
        a.register(work.fn("a"), "work")
        b.register(work.fn("b"), "work")
        await a.submit(gate, "block")
        await gate.wait_entered("block")
        ref = await a.submit("work")
        stream = a.events(ref.id)
        seen: list[State] = []
        ended = anyio.Event()

        async def read() -> None:
            async for event in stream:
                seen.append(event.state)
                if event.state.is_done and event.state is not State.CANCELED:
                    ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await take_over(a, b, ref.id)
            work.release.set()
            await b.wait(ref.id)
            hear.set()
            gate.open("block")
            await until(lambda: a._statistics().live == 0)
            with anyio.move_on_after(HANG):
                await ended.wait()
            stream.close()
            tg.cancel_scope.cancel()
        assert State.SUCCEEDED in seen, f"A's events of the job: {seen}"
    await check_closed(a)
    await check_closed(b)


async def test_defect_a_cancelled_submit_reusing_an_id_cancels_the_job_that_has_it(
    make_store: MakeStore,
) -> None:
    """A submit with the id of a job still waiting (which should raise JobError and change
    nothing) is cancelled, as a request with a deadline is: the cancelled insert's clean-up
    (``BatchSink._withdraw``) records the *existing* job CANCELED (it is CREATED and this
    manager's), so it never runs. Should leave it alone: the clean-up is for a record this call
    may have written, which a failed or unwritten insert did not."""
    gates = Gates()
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        await jobs.submit(gates, "block")
        await gates.wait_entered("block")
        await jobs.submit(ok, "mine", id="job")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await jobs.submit(ok, "duplicate", id="job")
        gates.open("block")
        info = await jobs.wait("job")
        assert info is not None
        assert (info.state, info.result) == (State.SUCCEEDED, "mine")
    await check_closed(jobs)


async def test_defect_wait_without_timeout_returns_a_running_job_taken_over_elsewhere(pairs: Pairs) -> None:
    """A waits for its job; B takes it over and starts it before A hears. A's worker then meets
    its stale entry: the claim is refused, the entry is retired as *canceled elsewhere*, which
    wakes A's waiter, and ``wait`` returns the store's info read then: RUNNING, with no timeout
    given (a hook also hears ``canceled_elsewhere``, and A's events show a CANCELED end, for a
    job running under B). Should return a done job (the end of B's run)."""
    store_a, store_b, hear = pairs.late()
    work = Calls()
    gate = Gates()
    async with JobManager(store_a, max_concurrency=1) as a, JobManager(store_b) as b:
        a.register(work.fn("a"), "work")
        b.register(work.fn("b"), "work")
        await a.submit(gate, "block")
        await gate.wait_entered("block")
        ref = await a.submit("work")
        returned = anyio.Event()
        results: list[Any] = []

        async def wait_in_a() -> None:
            results.append(await a.wait(ref.id))
            returned.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_in_a)
            await until(lambda: a._statistics().waiters == 1)
            await take_over(a, b, ref.id)
            await work.entered["b"].wait()
            await b.get(ref.id)  # B's RUNNING write is in the store
            gate.open("block")  # A's worker meets its stale entry
            await until(lambda: a._statistics().live == 0)
            work.release.set()
            await b.wait(ref.id)
            hear.set()
            with anyio.move_on_after(HANG):
                await returned.wait()
            tg.cancel_scope.cancel()
        assert [None if i is None else i.state.is_done for i in results] == [True], (
            f"a.wait(id) returned {[None if i is None else i.state for i in results]}"
        )
        assert work.calls == ["b"]
    await check_closed(a)
    await check_closed(b)


class Stuck(BaseException):
    """Raised by the test's hook to get out of a shutdown that would wait for a year."""


async def test_a_waiting_job_taken_over_elsewhere_runs_once_there(pairs: Pairs) -> None:
    """B cancels A's waiting job (True; then False from A, one answer from every manager) and
    retries it: it runs once, under B; A never starts it, leaves nothing live and closes clean."""
    store_a, store_b = pairs.raw()
    work = Calls()
    gate = Gates()
    async with JobManager(store_a, max_concurrency=1) as a, JobManager(store_b) as b:
        a.register(work.fn("a"), "work")
        b.register(work.fn("b"), "work")
        await a.submit(gate, "block")
        await gate.wait_entered("block")
        ref = await a.submit("work")
        assert await b.cancel(ref.id) is True
        assert await a.cancel(ref.id) is False
        await b.retry(ref.id)
        await work.entered["b"].wait()
        gate.open("block")
        work.release.set()
        info = await b.wait(ref.id)
        assert info is not None
        assert (info.state, info.result, info.attempts) == (State.SUCCEEDED, "b", 1)
        await until(lambda: a._statistics().live == 0)
        assert work.calls == ["b"]
        assert (await a.stats()).by_state[State.SUCCEEDED] == 2
    await check_closed(a)
    await check_closed(b)


async def test_a_delayed_job_taken_over_elsewhere_leaves_the_first_owners_queue(pairs: Pairs) -> None:
    """A's job waits for its delay (a year); B cancels and retries it, so it runs now, under B.
    A's delayed queue lets it go (A hears of it in time here), and A closes at once while B's
    run goes on, untouched."""
    store_a, store_b = pairs.raw()
    work = Calls()
    async with JobManager(store_b) as b:
        b.register(work.fn("b"), "work")
        async with JobManager(store_a, shutdown_timeout=0) as a:
            a.register(work.fn("a"), "work")
            ref = await a.submit("work", delay=365 * 86400)
            assert a._statistics().delayed == 1
            await take_over(a, b, ref.id)
            await work.entered["b"].wait()
            await until(lambda: a._statistics().delayed == 0 and a._statistics().live == 0)
        assert await b.status(ref.id) is State.RUNNING
        work.release.set()
        info = await b.wait(ref.id)
        assert info is not None
        assert info.state is State.SUCCEEDED
        assert work.calls == ["b"]
    await check_closed(a)
    await check_closed(b)


async def test_cancel_of_a_running_job_answers_true_once_across_managers(pairs: Pairs) -> None:
    """A's own running job: A's cancel answers True, then B's and A's again False; it ends
    CANCELED, seen alike from both managers."""
    store_a, store_b = pairs.raw()
    gates = Gates()
    async with JobManager(store_a) as a, JobManager(store_b) as b:
        ref = await a.submit(gates, "run")
        await gates.wait_entered("run")
        await b.get(ref.id)  # A's RUNNING write is in the store
        assert [await a.cancel(ref.id), await b.cancel(ref.id), await a.cancel(ref.id)] == [
            True,
            False,
            False,
        ]
        info = await a.wait(ref.id)
        assert info is not None
        assert info.state is State.CANCELED
        seen = await b.wait(ref.id)
        assert seen is not None
        assert seen.state is State.CANCELED
    await check_closed(a)
    await check_closed(b)


async def test_a_cancelled_submit_with_a_new_id_leaves_nothing_waiting(make_store: MakeStore) -> None:
    """The fix of a cancelled insert, with an id nobody has: nothing is left CREATED."""
    store = make_store()
    async with JobManager(store) as jobs:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await jobs.submit(ok, id="fresh")
        assert await jobs.get("fresh") is None or (await jobs.get("fresh")).state is State.CANCELED  # type: ignore[union-attr]
    assert {k: v for k, v in (await stored(store)).items() if not v.is_done} == {}
    await check_closed(jobs)
