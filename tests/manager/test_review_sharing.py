"""Review of the sharing fixes of 2d07bdf: a job another manager canceled and retried ("took over").

Manager A submits a job; manager B, on the same records, cancels it and retries it, so the job is
B's now. The tests named ``test_defect_*`` failed against 2d07bdf and are fixed since (regression
tests): each docstring says what a user saw, then what should happen. The others pin down
behaviour that was right. The stores that make the races deterministic are in
:mod:`tests.manager.sharing`; later defects are in ``test_sharing_defects.py``.

A time bound appears only where the defect is a hang (a call that never returns).
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.manager.sharing import (
    HANG,
    Calls,
    Pairs,
    take_over,
)
from tests.manager.support import Gates, MakeStore, ok, until
from tests.manager.test_adversarial import check_closed, stored

from anyjob import JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


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
            await until(lambda: a._statistics().parked == 1)  # past its first read of the job
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
            await until(lambda: a._statistics().parked == 1)  # past its first read of the job
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
