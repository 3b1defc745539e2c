"""Cancellation at each checkpoint of each manager method (adversarial; all pass today).

A helper task runs one call inside a cancel scope that a sibling cancels after *n* schedule
points, for n in ``POINTS``: so the cancellation lands at each await of the call in turn
(before it started, in the store, in a settle, ...). Whatever point it hits, the manager stays
consistent: a cancelled submit stored nothing, a cancelled wait leaves no waiter, a cancelled
cancel or retry leaves a job that still ends, and the manager closes with nothing live.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import Gates, MakeStore, boom, ok
from tests.manager.test_adversarial import check_closed

from anyjob import JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]

POINTS = range(8)


async def cancel_after(n: int, call: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run *call* in a task whose scope is cancelled after *n* schedule points; its result, if any."""
    done: list[Any] = []
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            done.append(await call())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            for _ in range(n):
                await anyio.lowlevel.checkpoint()
            scope.cancel()
    return done


async def test_a_cancelled_submit_stored_nothing(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        for n in POINTS:
            done = await cancel_after(n, lambda n=n: jobs.submit(ok, id=f"s{n}"))  # type: ignore[misc]
            info = await jobs.get(f"s{n}")
            assert bool(done) == (info is not None), (n, done, info)
            if done:
                final = await jobs.wait(f"s{n}")
                assert final is not None
                assert final.state is State.SUCCEEDED
        assert jobs._statistics().live == 0
    await check_closed(jobs)


async def test_a_cancelled_wait_leaves_no_waiter(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(gates, 1)
        await gates.wait_entered(1)
        for n in POINTS:
            assert await cancel_after(n, lambda: jobs.wait(ref.id)) == []
            assert jobs._statistics().waiters == 0, n
        gates.open(1)
    await check_closed(jobs)


async def test_a_cancelled_cancel_of_a_running_job_leaves_it_consistent(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        for n in POINTS:
            gates = Gates()
            ref = await jobs.submit(gates, n)
            await gates.wait_entered(n)
            done = await cancel_after(n, lambda ref=ref: jobs.cancel(ref.id))  # type: ignore[misc]
            gates.open(n)
            info = await jobs.wait(ref.id)
            assert info is not None
            if done:
                assert (done, info.state) == ([True], State.CANCELED), n
            else:
                assert info.state in {State.SUCCEEDED, State.CANCELED}, n
    await check_closed(jobs)


async def test_a_cancelled_cancel_of_a_waiting_job_leaves_it_consistent(make_store: MakeStore) -> None:
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        for n in POINTS:
            gates = Gates()
            await jobs.submit(gates, "blocker")
            await gates.wait_entered("blocker")
            ref = await jobs.submit(gates, n)
            done = await cancel_after(n, lambda ref=ref: jobs.cancel(ref.id))  # type: ignore[misc]
            gates.open("blocker")
            gates.open(n)
            info = await jobs.wait(ref.id)
            assert info is not None
            if done:
                assert (done, info.state) == ([True], State.CANCELED), n
                assert n not in gates.order  # it never ran
    await check_closed(jobs)


async def test_a_cancelled_retry_requeues_all_or_nothing(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        for n in POINTS:
            ref = await jobs.submit(boom, id=f"r{n}")
            await jobs.wait(ref.id)
            done = await cancel_after(n, lambda ref=ref: jobs.retry(ref.id))  # type: ignore[misc]
            info = await jobs.wait(ref.id)
            assert info is not None
            assert info.state is State.FAILED, n
            if done:
                assert info.attempts == 2, n
            assert jobs._statistics().live == 0, n
    await check_closed(jobs)


async def test_a_cancelled_delete_deletes_all_or_nothing(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        for n in POINTS:
            ref = await jobs.submit(ok, id=f"d{n}")
            await jobs.wait(ref.id)
            if await cancel_after(n, lambda ref=ref: jobs.delete(ref.id)):  # type: ignore[misc]
                assert await jobs.get(ref.id) is None, n
    await check_closed(jobs)


async def test_cancelled_queries_leave_nothing_behind(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(gates, 1)
        for n in POINTS:
            await cancel_after(n, jobs.list)
            await cancel_after(n, jobs.stats)
            await cancel_after(n, lambda: jobs.status(ref.id))
            await cancel_after(n, lambda: jobs.get(ref.id))
            await cancel_after(n, lambda: jobs.cleanup(0))
        assert jobs._statistics().waiters == 0
        gates.open(1)
    await check_closed(jobs)
