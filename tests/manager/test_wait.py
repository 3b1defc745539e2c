"""Waiting for jobs: timeouts, wake-ups by the end (not by polling), and ends the store no longer shows."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from tests.manager.support import Gates, MakeStore, until

import anyjob
from anyjob import JobManager, State
from conftest import DelegatingStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_wait_timeout_returns_latest_info(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(gates, "slow")
        await gates.wait_entered("slow")
        info = await jobs.wait(ref.id, timeout=0.05)
        assert info is not None
        assert info.state is State.RUNNING
        gates.open("slow")
        done = await jobs.wait(ref.id, timeout=timedelta(seconds=10))
        assert done is not None
        assert done.state is State.SUCCEEDED


async def test_wait_is_woken_by_the_end_not_by_polling(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(gates, "g")
        await gates.wait_entered("g")
        results: list[State] = []

        async def waiter() -> None:
            info = await jobs.wait(ref.id)
            assert info is not None
            results.append(info.state)

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            tg.start_soon(waiter)
            await until(lambda: jobs._statistics().waiters == 1)  # one job waited on, by both
            await anyio.wait_all_tasks_blocked()
            assert results == []
            gates.open("g")
        assert results == [State.SUCCEEDED, State.SUCCEEDED]


async def test_wait_returns_the_final_info_even_if_the_record_is_gone(make_store: MakeStore) -> None:
    class ForgetsFinished(DelegatingStore):
        """Reads as if retention deleted every finished record at once."""

        read_running: anyio.Event | None = None  # set once a read has answered RUNNING

        async def get(self, job_id):  # type: ignore[no-untyped-def]
            info = await self.inner.get(job_id)
            if info is not None and info.state is State.RUNNING and self.read_running is not None:
                self.read_running.set()
            return None if info is not None and info.state.is_done else info

    gates = Gates()
    store = ForgetsFinished(make_store())
    async with JobManager(store) as jobs:
        ref = await jobs.submit(gates, "g")
        await gates.wait_entered("g")
        results: list[anyjob.JobInfo | None] = []

        async def waiter() -> None:
            results.append(await jobs.wait(ref.id))

        store.read_running = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            with anyio.fail_after(5):
                await store.read_running.wait()  # the waiter has read the job RUNNING
            await anyio.wait_all_tasks_blocked()  # and waits for its end
            gates.open("g")
        assert results[0] is not None
        assert results[0].state is State.SUCCEEDED
        assert results[0].result == "g"


async def test_wait_is_woken_by_an_end_that_comes_while_the_store_answers(make_store: MakeStore) -> None:
    # A store that suspends while reading (any real database does): the job may end between the
    # read and the wait. The waiter is registered before the read, so that end still wakes it.
    reading = anyio.Event()
    answer = anyio.Event()

    class SlowReads(DelegatingStore):
        slow = False

        async def get(self, job_id):  # type: ignore[no-untyped-def]
            info = await self.inner.get(job_id)
            if self.slow:
                reading.set()
                await answer.wait()
            return info

    gates = Gates()
    store = SlowReads(make_store())  # controls when the read returns, whatever store is behind it
    results: list[anyjob.JobInfo | None] = []
    async with JobManager(store) as jobs:
        ref = await jobs.submit(gates, "g")
        await gates.wait_entered("g")
        store.slow = True

        async def waiting() -> None:
            results.append(await jobs.wait(ref.id))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiting)
                await reading.wait()  # it has read the job RUNNING, and the answer is on its way
                store.slow = False
                gates.open("g")
                ended = await jobs.wait(ref.id)
                assert ended is not None
                assert ended.state is State.SUCCEEDED
                answer.set()  # now the first read answers, with the job still RUNNING in it
        assert jobs._statistics().waiters == 0
    assert results[0] is not None
    assert results[0].state is State.SUCCEEDED
