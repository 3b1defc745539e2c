"""Adversarial cases of the JobManager that work today (documented so they stay so)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import Gates, MakeStore, ok
from tests.manager.test_adversarial import check_closed, stored

from anyjob import Context, JobManager, JobStateError, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


class Custom(BaseException):
    pass


@pytest.mark.parametrize("exc", [GeneratorExit, Custom])
@pytest.mark.parametrize("policy", [False, True], ids=["in_place", "executor"])
async def test_a_job_raising_a_base_exception_ends_failed_and_the_rest_canceled(
    make_store: MakeStore, exc: type[BaseException], policy: bool
) -> None:
    """It escapes the manager (in the task group's group, as anyio does); every record ends."""
    store = make_store()
    gates = Gates()

    async def bad(ctx: Context) -> None:
        await anyio.lowlevel.checkpoint()
        raise exc

    with pytest.raises(BaseException) as raised:  # noqa: PT012 - the manager block is the call under test; checked below
        async with JobManager(store) as jobs:
            await jobs.submit(gates, "other")
            await gates.wait_entered("other")
            await jobs.submit(ok, delay=100)
            await jobs.submit(bad, id="bad", **({"retry": 2} if policy else {}))
            await anyio.sleep_forever()
    assert raised.group_contains(exc) or isinstance(raised.value, exc)
    states = await stored(store)
    assert states.pop("bad") is State.FAILED
    assert set(states.values()) == {State.CANCELED}
    await check_closed(jobs)


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
async def test_a_job_raising_an_interrupt_reaches_the_caller_on_trio(
    make_store: MakeStore, exc: type[BaseException]
) -> None:
    """(On asyncio a KeyboardInterrupt raised in any task escapes the event loop itself.)"""
    store = make_store()

    async def bad(ctx: Context) -> None:
        await anyio.lowlevel.checkpoint()
        raise exc

    with pytest.raises(exc):  # noqa: PT012 - the manager block is the call under test
        async with JobManager(store) as jobs:
            await jobs.submit(bad, id="bad")
            await anyio.sleep_forever()
    assert (await stored(store))["bad"] is State.FAILED
    await check_closed(jobs)


@pytest.mark.parametrize("exc", [ZeroDivisionError, KeyboardInterrupt])
async def test_an_exception_in_the_body_propagates_as_it_is_and_jobs_end(
    make_store: MakeStore, exc: type[BaseException]
) -> None:
    store = make_store()
    gates = Gates()
    with pytest.raises(exc):  # noqa: PT012 - the manager block is the call under test
        async with JobManager(store, shutdown_timeout=0.05) as jobs:
            await jobs.submit(gates, 1)
            await jobs.submit(gates, 2, retry=2)
            await gates.wait_entered(1)
            await gates.wait_entered(2)
            raise exc
    assert set((await stored(store)).values()) == {State.CANCELED}
    await check_closed(jobs)


async def test_shutdown_timeout_zero_cancels_running_waiting_and_delayed_jobs(make_store: MakeStore) -> None:
    store = make_store()
    gates = Gates()
    async with JobManager(store, shutdown_timeout=0, max_concurrency=2) as jobs:
        for key in range(3):
            await jobs.submit(gates, key)
        await jobs.submit(gates, "policy", retry=3)
        await jobs.submit(ok, delay=100)
        await gates.wait_entered(0)
    assert set((await stored(store)).values()) == {State.CANCELED}
    await check_closed(jobs)


async def test_a_job_calling_its_own_manager(make_store: MakeStore) -> None:
    """Submit and wait from inside a job, wait on itself, retry/delete itself, cancel itself."""
    seen: dict[str, Any] = {}
    async with JobManager(make_store()) as jobs:

        async def selfish(ctx: Context) -> None:
            own = await jobs.wait(ctx.id, timeout=0)
            seen["own"] = None if own is None else own.state
            for call in (jobs.retry, jobs.delete):
                with pytest.raises(JobStateError):
                    await call(ctx.id)
            child = await jobs.submit(ok, "child")
            info = await jobs.wait(child.id)
            seen["child"] = None if info is None else info.state
            seen["cancel"] = await jobs.cancel(ctx.id)
            await anyio.sleep_forever()

        ref = await jobs.submit(selfish)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert info.state is State.CANCELED
        assert seen == {"own": State.RUNNING, "child": State.SUCCEEDED, "cancel": True}
    await check_closed(jobs)


async def test_a_job_with_a_policy_cancels_itself(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:

        async def selfish(ctx: Context) -> None:
            assert await jobs.cancel(ctx.id) is True
            await anyio.sleep_forever()

        ref = await jobs.submit(selfish, retry=3, timeout=100)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts) == (State.CANCELED, 1)
    await check_closed(jobs)


async def test_many_waiters_on_one_job_half_cancelled(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(gates, 1)
        results: dict[int, State] = {}
        scopes: dict[int, anyio.CancelScope] = {}

        async def waiter(number: int) -> None:
            with anyio.CancelScope() as scope:
                scopes[number] = scope
                info = await jobs.wait(ref.id)
                assert info is not None
                results[number] = info.state

        async with anyio.create_task_group() as tg:
            for number in range(50):
                tg.start_soon(waiter, number)
            await anyio.wait_all_tasks_blocked()
            assert jobs._statistics().waiters == 1  # one per job id
            for number in range(25):
                scopes[number].cancel()
            await anyio.wait_all_tasks_blocked()
            assert jobs._statistics().waiters == 1
            gates.open(1)
        # The 25 left waiting all see the end. A cancelled one may have been in the store's
        # worker thread (a task waiting on a thread counts as blocked, and the thread is not
        # abandoned): its read may then see the end, and that wait returns it (the operation
        # completed, as trio's own to_thread calls do); none returns anything else.
        assert [results.get(number) for number in range(25, 50)] == [State.SUCCEEDED] * 25
        assert set(results.values()) == {State.SUCCEEDED}
        assert jobs._statistics().waiters == 0
    await check_closed(jobs)


async def test_an_events_stream_closed_while_read_ends_the_reader(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        stream = jobs.events()
        got: list[State] = []

        async def read() -> None:
            got.extend([event.state async for event in stream])

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await jobs.submit(gates, 1)
            await gates.wait_entered(1)
            await anyio.wait_all_tasks_blocked()
            stream.close()
        assert got == [State.CREATED, State.RUNNING]
        assert jobs._statistics().streams == 0
        gates.open(1)
    await check_closed(jobs)


async def test_priorities_with_one_worker(make_store: MakeStore) -> None:
    gates = Gates()
    order: list[Any] = []

    async def note(ctx: Context) -> None:
        order.append(ctx.params)

    async with JobManager(make_store(), max_concurrency=1) as jobs:
        await jobs.submit(gates, "blocker")
        await gates.wait_entered("blocker")
        for seq, priority in enumerate([0, 5, -3, 5, 10, 0]):
            await jobs.submit(note, [priority, seq], priority=priority)
        gates.open("blocker")
    assert order == [[10, 4], [5, 1], [5, 3], [0, 0], [0, 5], [-3, 2]]
    await check_closed(jobs)


async def test_a_huge_result_is_stored(make_store: MakeStore) -> None:
    async def huge(ctx: Context) -> list[int]:
        return list(range(200_000))

    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(huge)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, len(info.result)) == (State.SUCCEEDED, 200_000)
    await check_closed(jobs)


async def test_two_retries_at_once_run_the_job_once_more(make_store: MakeStore) -> None:
    again = anyio.Event()
    runs: list[int] = []

    async def boom_later(ctx: Context) -> None:
        runs.append(1)
        if len(runs) > 1:
            await again.wait()  # the retried run ends only once both retries answered
        msg = "boom"
        raise ValueError(msg)

    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(boom_later)
        await jobs.wait(ref.id)
        outcomes: list[str] = []

        async def retry() -> None:
            try:
                outcomes.append((await jobs.retry(ref.id)).id)
            except JobStateError:
                outcomes.append("refused")

        async with anyio.create_task_group() as tg:
            tg.start_soon(retry)
            tg.start_soon(retry)
        assert sorted(outcomes) == sorted([ref.id, "refused"])
        again.set()
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts) == (State.FAILED, 2)
    await check_closed(jobs)


async def test_managers_sharing_a_store_cancel_and_delete_each_others_jobs(make_store: MakeStore) -> None:
    store = make_store()
    gates = Gates()
    async with JobManager(store) as a, JobManager(store) as b:
        for jobs in (a, b):
            jobs.register(gates, "gate")
        done = await a.submit(ok)
        await a.wait(done.id)
        running = await a.submit("gate", 1)
        await gates.wait_entered(1)
        delayed = await a.submit("gate", 2, delay=100)
        await b.get(running.id)
        ends: dict[str, State | None] = {}

        async def wait(key: str, jobs: JobManager, job_id: str) -> None:
            info = await jobs.wait(job_id)
            ends[key] = None if info is None else info.state

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, "a running", a, running.id)
            tg.start_soon(wait, "b running", b, running.id)
            tg.start_soon(wait, "b delayed", b, delayed.id)
            await anyio.wait_all_tasks_blocked()
            await b.delete(done.id)
            assert await b.cancel(running.id) is True
            assert await b.cancel(running.id) is False
            assert await b.cancel(delayed.id) is True
        assert ends == {"a running": State.CANCELED, "b running": State.CANCELED, "b delayed": State.CANCELED}
        assert await a.get(done.id) is None
        await b.retry(running.id)
        await b.retry(delayed.id)
        gates.open(1)
        gates.open(2)
        for job in (running, delayed):
            info = await a.wait(job.id)
            assert info is not None
            assert info.state is State.SUCCEEDED
    await check_closed(a)
    await check_closed(b)
