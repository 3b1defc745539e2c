"""Defects found in managers sharing a store after the first review (each failed before its fix).

Each docstring says what a user saw, then what should happen. Races are made deterministic by
stores that hold a write (:class:`Overlap`, :class:`~tests.manager.sharing.HeldStartStore`),
never by sleeps.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pytest
from tests.conftest import DelegatingStore
from tests.manager.sharing import (
    Calls,
    HeldStartStore,
    Pairs,
    Stuck,
    late_subscriber,
    take_over,
)
from tests.manager.support import until
from tests.manager.test_adversarial import check_closed

from anyjob import Context, JobError, JobManager, JobStateError, State, StoreError, instrumentation
from anyjob.instrumentation import HookEvent
from anyjob.stores import MemoryStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


class Overlap(DelegatingStore):
    """Two writes of one kind overlap: the first waits until the second comes; the second is
    written after the first, then its answer never comes (its caller is cancelled meanwhile)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind  # "insert", or "requeue" (an apply writing CREATED)
        self.armed = False  # the writes before the test's two pass through
        self.seen = 0
        self.go = anyio.Event()
        self.first_done = anyio.Event()
        self.second_written = anyio.Event()

    async def _overlapping(self, write: Any) -> Any:
        if not self.armed:
            return await write()
        self.seen += 1
        if self.seen == 1:
            await self.go.wait()
            try:
                return await write()
            finally:
                self.first_done.set()
        if self.seen == 2:
            self.go.set()
            await self.first_done.wait()
            with contextlib.suppress(Exception):  # refused: a duplicate id, or no longer retryable
                await write()
            self.second_written.set()
            await anyio.sleep_forever()
        return await write()

    async def insert(self, record):  # type: ignore[no-untyped-def]
        if self.kind != "insert":
            return await super().insert(record)
        return await self._overlapping(lambda: self.inner.insert(record))

    async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
        if self.kind != "requeue" or not any(u.fields.get("state") is State.CREATED for u in updates):
            return await super().apply(updates, origin=origin)
        return await self._overlapping(lambda: self.inner.apply(updates, origin=origin))


class Hold:
    """A job function holding the manager's only slot until :meth:`release`."""

    def __init__(self) -> None:
        self._released = anyio.Event()

    async def __call__(self, ctx: Context) -> None:
        await self._released.wait()

    def release(self) -> None:
        self._released.set()


async def _second_call_then_cancel(store: Overlap, call: Any) -> list[BaseException]:
    """Run *call* (the second write) until the store wrote it or it was refused; then cancel it."""
    refused: list[BaseException] = []
    scope = anyio.CancelScope()

    async def second() -> None:
        with scope:
            try:
                await call()
            except (JobError, JobStateError) as exc:
                refused.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await until(lambda: store.second_written.is_set() or bool(refused))
        scope.cancel()
        store.go.set()
    return refused


async def test_defect_a_cancelled_retry_that_lost_cancels_the_retry_that_won() -> None:
    """Two retries of one failed job at once in one manager: the second's write reaches the store
    after the first's (refused there: the job waits again), then the second is cancelled before
    its answer comes. It withdrew what it might have written: it wrote CANCELED over the first
    retry's waiting job, which then ended CANCELED without running. Should leave the first
    retry's job alone (the second is refused at once: the job is being retried)."""
    store = Overlap("requeue")
    hold = Hold()
    runs: list[int] = []

    async def flaky(ctx: Context) -> int:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        return len(runs)

    async with JobManager(store, max_concurrency=1) as jobs:
        ref = await jobs.submit(flaky)
        failed = await jobs.wait(ref.id)
        assert failed is not None
        assert failed.state is State.FAILED
        blocker = await jobs.submit(hold, "blocker")  # the retried job waits until it is released
        store.armed = True
        retried: list[Any] = []

        async def first() -> None:
            retried.append(await jobs.retry(ref.id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await until(lambda: store.seen == 1)
            refused = await _second_call_then_cancel(store, lambda: jobs.retry(ref.id))
        hold.release()
        await jobs.wait(blocker.id)
        info = await jobs.wait(ref.id, timeout=5)
        assert info is not None
        assert (info.state, info.result, len(retried)) == (State.SUCCEEDED, 2, 1)
        assert [type(exc) for exc in refused] == [JobStateError]
    await check_closed(jobs)


async def test_defect_a_cancelled_duplicate_submit_cancels_the_job_whose_insert_was_first() -> None:
    """Two submits with one id at once: the second's insert reaches the store after the first's
    (refused there: a duplicate id), then it is cancelled before its answer comes; it withdrew
    what it might have written: the first submit's job ended CANCELED without running. Should
    leave the first job alone (the second is refused at once: the id is being submitted)."""
    store = Overlap("insert")
    hold = Hold()
    runs: list[str] = []

    async def work(ctx: Context) -> str:
        runs.append(ctx.id)
        return "done"

    async with JobManager(store, max_concurrency=1) as jobs:
        blocker = await jobs.submit(hold, "blocker")  # the submitted job waits until it is released
        store.armed = True
        refs: list[Any] = []

        async def first() -> None:
            refs.append(await jobs.submit(work, id="job"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await until(lambda: store.seen == 1)
            refused = await _second_call_then_cancel(store, lambda: jobs.submit(work, id="job"))
        hold.release()
        await jobs.wait(blocker.id)
        info = await jobs.wait("job", timeout=5)
        assert info is not None
        assert (info.state, runs, len(refs)) == (State.SUCCEEDED, ["job"], 1)
        assert [type(exc) for exc in refused] == [JobError]
    await check_closed(jobs)


class HeldFlushStore(HeldStartStore):
    """:class:`HeldStartStore` holding the first full write of a start (the worker's flush, with
    its progress), not a claim."""

    async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
        if not self.held.is_set() and any(
            u.fields.get("state") is State.RUNNING and "progress" in u.fields for u in updates
        ):
            self.held.set()
            await self.release.wait()
        return await self.inner.apply(updates, origin=origin)


async def test_defect_a_job_canceled_elsewhere_after_its_claim_runs_in_both_managers(
    batched_pairs: Pairs,
) -> None:
    """A's worker claims its job (the claim only checked CREATED and owner A: it wrote nothing)
    and calls the function; the RUNNING write is still on its way when B cancels the job. B's
    cancel found it CREATED in the store and answered True, CANCELED at once, though it
    executes; B retried it and ran it too: the function ran in both managers at once. Should run
    in one manager at a time: the claim is the write that makes the job RUNNING (B's cancel then
    asks A to stop, and retry is refused while it is canceling)."""
    raw_a, store_b = batched_pairs.raw()
    store_a = HeldFlushStore(raw_a)
    work = Calls()
    async with JobManager(store_a) as a, JobManager(store_b) as b:
        a.register(work.fn("a"), "work")
        b.register(work.fn("b"), "work")
        try:
            ref = await a.submit("work")
            await work.entered["a"].wait()  # claimed and executing in A
            await store_a.held.wait()  # its RUNNING write waits
            assert await b.cancel(ref.id) is True
            with contextlib.suppress(JobStateError):
                await b.retry(ref.id)
                await work.entered["b"].wait()
        finally:
            store_a.release.set()
            work.release.set()
        info = await b.wait(ref.id)
        assert info is not None
        assert info.state is State.CANCELED
        await until(lambda: a._statistics().live == 0)
        assert work.max_running == 1, f"ran at once in {work.calls}"
        assert work.calls == ["a"]
    await check_closed(a)
    await check_closed(b)


async def test_defect_the_first_owner_closing_cancels_the_job_running_elsewhere() -> None:
    """One MemoryStore, records shared: A's delayed job is taken over by B and running there
    before A hears. A closed: it canceled its stale entry, which wrote the shared record, B's:
    CANCELING (B's run was not told; its end was then CANCELING -> SUCCEEDED, an AssertionError
    in B's worker); and A's exit waited for the stale entry, which only its due time (a year
    here) would release: ``shutdown_overdue`` named it. Should close at once and leave B's job
    RUNNING."""
    overdue: list[str | None] = []

    def hook(event: HookEvent) -> None:
        if event.name == "anyjob.shutdown_overdue":
            overdue.append(event.job_id)
            raise Stuck

    hear = anyio.Event()
    store = MemoryStore()
    late_subscriber(store, hear, after=1)  # B subscribes first, A late
    work = Calls()
    async with JobManager(store, shutdown_timeout=0) as b:
        b.register(work.fn("b"), "work")
        a = JobManager(store, shutdown_timeout=0.1)
        a.register(work.fn("a"), "work")
        closed_by: BaseException | None = None
        instrumentation.set_hooks([hook])
        try:
            async with a:
                ref = await a.submit("work", delay=365 * 86400)
                await take_over(a, b, ref.id)
                await work.entered["b"].wait()
        except Stuck as exc:
            closed_by = exc
        finally:
            instrumentation.set_hooks([])
        state_in_b = await b.status(ref.id)
        hear.set()
        assert (overdue, closed_by, state_in_b) == ([], None, State.RUNNING)
        work.release.set()
        info = await b.wait(ref.id)
        assert info is not None
        assert info.state is State.SUCCEEDED
    await check_closed(b)


async def test_cancel_on_the_first_owner_of_a_job_taken_over_cancels_it_where_it_runs() -> None:
    """Shared records: A's job, taken over and running in B before A hears, is canceled from A:
    A asks the store (its own entry is stale), B stops the job, both see it CANCELED."""
    hear = anyio.Event()
    store = MemoryStore()
    late_subscriber(store, hear, after=1)
    work = Calls()
    async with JobManager(store) as b:
        b.register(work.fn("b"), "work")
        async with JobManager(store) as a:
            a.register(work.fn("a"), "work")
            ref = await a.submit("work", delay=365 * 86400)
            await take_over(a, b, ref.id)
            await work.entered["b"].wait()
            assert await a.cancel(ref.id) is True
            info = await b.wait(ref.id, timeout=5)
            assert info is not None
            assert info.state is State.CANCELED
            assert await a.status(ref.id) is State.CANCELED
            assert a._statistics().live == 0
            hear.set()
        assert work.calls == ["b"]
    await check_closed(b)


class UnreadableStore(DelegatingStore):
    """*inner*: reading a record fails (the database is unreachable) once ``broken`` is set."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.broken = False

    async def get_record(self, job_id):  # type: ignore[no-untyped-def]
        if self.broken:
            raise StoreError("the database is unreachable")
        return await super().get_record(job_id)


async def test_a_refused_claim_whose_record_cannot_be_read_leaves_the_manager_running() -> None:
    """A's claim of a job B canceled is refused, and reading the record to learn why fails
    (``StoreError``): it ended A's worker and took the manager down. Should drop the job here
    (not A's to run now) and let the feed tell the rest: A's ``wait`` sees it CANCELED."""
    inner = MemoryStore()
    hear = anyio.Event()
    from tests.manager.sharing import LateStore

    store_a = UnreadableStore(LateStore(inner, hear))
    hold = Hold()
    async with JobManager(store_a, max_concurrency=1) as a, JobManager(DelegatingStore(inner)) as b:
        blocker = await a.submit(hold, "blocker")
        ref = await a.submit(hold, "victim")
        assert await b.cancel(ref.id) is True  # A has not heard
        store_a.broken = True
        hold.release()  # A's worker takes the victim next: its claim is refused
        await until(lambda: a._statistics().live == 0)
        store_a.broken = False
        hear.set()
        info = await a.wait(ref.id, timeout=5)
        assert info is not None
        assert info.state is State.CANCELED
        assert (await a.wait(blocker.id)) is not None
        again = await a.submit(hold, "after")
        done = await a.wait(again.id, timeout=5)
        assert done is not None
        assert done.state is State.SUCCEEDED
    await check_closed(a)
