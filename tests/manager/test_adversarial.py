"""Adversarial tests of the JobManager, through its public API (as a demanding anyio user would).

Tests named ``test_bug_*`` are regression tests: each showed a defect found by an adversarial
trial (its docstring tells what went wrong, then what should happen), fixed since.
The cases that work are in test_adversarial_cases.py and test_adversarial_cancellation.py.
Two stores defined here make races deterministic: :class:`DeafStore` lets a test decide when a manager
hears of the other managers' changes (a slow change feed, as an SQL store polling every second
has), :class:`SlowReplyStore` writes and then waits for its answer (an async driver whose
reply arrives after the write is committed).
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.conftest import DelegatingStore
from tests.manager.support import Gates, MakeStore, boom, ok, until

from anyjob import Context, JobManager, State, instrumentation
from anyjob.instrumentation import HookEvent
from anyjob.stores import MemoryStore, SQLiteStore
from anyjob.stores._base import JobQuery, StoreChange, StoreFeed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def check_closed(jobs: JobManager) -> None:
    """Every invariant of a closed manager: nothing live, every record done, counts agree."""
    stats = jobs._statistics()
    assert (stats.phase, stats.live, stats.executing, stats.waiters, stats.ready) == ("closed", 0, 0, 0, 0), (
        stats
    )
    infos = await jobs.list(limit=1000)
    assert [(i.id, i.state) for i in infos if not i.state.is_done] == []
    counts = await jobs.stats()
    assert counts.total == len(infos)
    for state in State:
        assert counts.by_state[state] == sum(1 for i in infos if i.state is state), state


async def stored(store: Any) -> dict[str, State]:
    return {info.id: info.state for info in await store.query(JobQuery(limit=1000))}


# -- stores that make races deterministic --------------------------------------------------------


class _PausedFeed:
    def __init__(self, feed: StoreFeed, hear: anyio.Event) -> None:
        self._feed = feed
        self._hear = hear

    def __aiter__(self) -> AsyncIterator[list[StoreChange]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[list[StoreChange]]:
        batches = aiter(self._feed)
        try:
            async for changes in batches:
                await self._hear.wait()
                yield changes
        finally:
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()

    def close(self) -> None:
        self._feed.close()


class DeafStore(DelegatingStore):
    """*inner*, shared with other managers; its manager hears of their changes once ``hear`` is set."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.hear = anyio.Event()

    def subscribe(self, origin):  # type: ignore[no-untyped-def]
        return _PausedFeed(self.inner.subscribe(origin), self.hear)


class SlowReplyStore(DelegatingStore):
    """Writes, then waits for its answer (an async driver whose reply arrives after the commit).

    After :meth:`slow_next`, the next ``insert`` or ``apply`` does its write and then blocks
    until the caller is cancelled.
    """

    def __init__(self) -> None:
        super().__init__()
        self.slow = False
        self.written = anyio.Event()

    def slow_next(self) -> None:
        self.slow = True

    async def _answer(self) -> None:
        if self.slow:
            self.slow = False
            self.written.set()
            await anyio.sleep_forever()

    async def insert(self, record):  # type: ignore[no-untyped-def]
        await self.inner.insert(record)
        await self._answer()

    async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
        applied = await self.inner.apply(updates, origin=origin)
        await self._answer()
        return applied


@pytest.fixture(params=["protocol", "sqlite"])
def deaf_pair(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[tuple[DeafStore, Any]]:
    """(a deaf store for manager A, the same records for manager B), both written in batches."""
    if request.param == "protocol":
        inner = MemoryStore()
        yield DeafStore(inner), DelegatingStore(inner)
        return
    a, b = (SQLiteStore(tmp_path / "jobs.db", poll_interval=0.02) for _ in range(2))
    yield DeafStore(a), b
    a.close()
    b.close()


# -- defects ----------------------------------------------------------------------------------------


async def test_bug_retry_elsewhere_of_a_job_canceled_elsewhere_runs_it_in_both_managers(
    deaf_pair: tuple[DeafStore, Any],
) -> None:
    """B cancels A's waiting job and retries it before A hears of the cancel: A's stale entry
    claims it (a claim only checks the record is CREATED, not that it is still A's), so A runs the
    job B requeued (and B, when its claim comes before A's RUNNING write lands, runs it again:
    seen with both freed at once). Should run once, under B (the manager that retried it)."""
    store_a, store_b = deaf_pair
    calls: list[str] = []

    async def run_a(ctx: Context) -> None:
        calls.append("a")
        await anyio.sleep(0.05)

    async def run_b(ctx: Context) -> None:
        calls.append("b")
        await anyio.sleep(0.05)

    gate_a, gate_b = Gates(), Gates()
    async with JobManager(store_a, max_concurrency=1) as a, JobManager(store_b, max_concurrency=1) as b:
        a.register(run_a, "work")
        b.register(run_b, "work")
        await a.submit(gate_a, "block")
        await b.submit(gate_b, "block")
        await gate_a.wait_entered("block")
        await gate_b.wait_entered("block")
        ref = await a.submit("work")
        assert await b.cancel(ref.id) is True
        await b.retry(ref.id)
        gate_a.open("block")  # A is free first: its stale entry is next in its queue
        try:
            await until(lambda: a._statistics().live == 0)
            gate_b.open("block")
            await until(lambda: b._statistics().live == 0)
        finally:
            store_a.hear.set()
        info = await b.wait(ref.id)
        assert info is not None
        assert info.state is State.SUCCEEDED
        assert calls == ["b"]
    await check_closed(a)
    await check_closed(b)


@pytest.mark.parametrize("how", ["waiting", "running"])
async def test_bug_owner_answers_true_to_a_cancel_another_manager_already_made(
    deaf_pair: tuple[DeafStore, Any], how: str
) -> None:
    """B cancels a job A owns (True), then A cancels it before hearing of that: A answers True as
    well (a waiting job is already CANCELED in the store, a running one already being canceled).
    Should be False: ``cancel`` answers the same from every manager (issue 8)."""
    store_a, store_b = deaf_pair
    gates = Gates()
    async with JobManager(store_a, max_concurrency=1) as a, JobManager(store_b) as b:
        running = await a.submit(gates, "running")
        await gates.wait_entered("running")
        waiting = await a.submit(gates, "waiting")
        target = waiting if how == "waiting" else running
        await b.get(running.id)  # A's RUNNING write is in the store
        try:
            assert await b.cancel(target.id) is True
            assert await a.cancel(target.id) is False
        finally:
            store_a.hear.set()
            gates.open("running")
            gates.open("waiting")
    await check_closed(a)


@pytest.mark.parametrize("operation", ["submit", "retry"])
async def test_bug_cancelled_after_the_store_wrote_leaves_a_created_record_nobody_runs(
    operation: str,
) -> None:
    """The caller's scope is cancelled while the store's answer is on its way (written, not yet
    answered): submit/retry raise the cancellation, the record stays CREATED with no manager
    running it, also after the manager closed. Should be either taken (and run or canceled) or
    not stored/requeued: no CREATED record outlives its manager."""
    store = SlowReplyStore()
    async with JobManager(store) as jobs:
        ref = await jobs.submit(boom, id="job")
        await jobs.wait(ref.id)
        with anyio.fail_after(5), anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                store.slow_next()
                if operation == "submit":
                    tg.start_soon(jobs.submit, ok, None)
                else:
                    tg.start_soon(jobs.retry, "job")
                await store.written.wait()  # the write is done; the answer is not
                scope.cancel()
    assert {job: state for job, state in (await stored(store)).items() if not state.is_done} == {}
    await check_closed(jobs)


class Interrupt(BaseException):
    """Stands for Ctrl-C: KeyboardInterrupt itself, raised in an asyncio task, escapes the loop."""


class Stuck(BaseException):
    """Raised by the test's hook to get out of a shutdown that would wait forever."""


async def test_bug_base_exception_in_a_hook_at_job_start_hangs_the_managers_exit(
    make_store: MakeStore,
) -> None:
    """A hook raises a BaseException for ``job_started`` (as Ctrl-C does when it lands while a
    hook runs): the worker dies before the job's function is called, the job stays RUNNING, and
    leaving the manager waits for it forever (shielded: no timeout can end it; this test gets
    out by raising from the ``shutdown_overdue`` warning). Should be recorded done, as when the
    job itself raises it, and the interrupt should reach the caller."""
    overdue: list[str | None] = []

    def hook(event: HookEvent) -> None:
        if event.name.endswith("job_started"):
            raise Interrupt
        if event.name.endswith("shutdown_overdue"):
            overdue.append(event.job_id)
            raise Stuck

    instrumentation.set_hooks([hook])
    store = make_store()
    with pytest.raises(BaseException) as raised:  # noqa: PT012 - the manager block is the call under test; the group is checked below
        async with JobManager(store, shutdown_timeout=0.1) as jobs:
            await jobs.submit(ok, id="job")
            await anyio.sleep_forever()
    instrumentation.set_hooks([])
    assert overdue == []
    assert raised.group_contains(Interrupt) or isinstance(raised.value, Interrupt)
    assert (await stored(store))["job"].is_done
    await check_closed(jobs)


async def test_bug_a_canceled_delayed_job_stays_in_the_delayed_queue(make_store: MakeStore) -> None:
    """A job submitted with a long delay and canceled stays counted in ``delayed`` (its entry and
    record are kept in the heap until the original due time: a year for ``delay=365 days``), also
    after the manager closed. Should leave the queue when canceled."""
    async with JobManager(make_store(), shutdown_timeout=0) as jobs:
        canceled = await jobs.submit(ok, delay=365 * 86400)
        assert await jobs.cancel(canceled.id) is True
        assert jobs._statistics().delayed == 0
        await jobs.submit(ok, delay=365 * 86400)  # left waiting: canceled when the manager closes
    assert jobs._statistics().delayed == 0
    await check_closed(jobs)
