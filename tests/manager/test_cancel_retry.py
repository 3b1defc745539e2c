"""Canceling and retrying jobs, and the executor policies (retry, timeout) a manager runs them with."""

from __future__ import annotations

import anyio
import pytest
from tests.manager.support import Gates, MakeStore, boom

from anyjob import Context, JobManager, JobStateError, Retry, State, instrumentation
from anyjob.testing import set_testing

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_cancel_waiting_running_and_done(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        running = await jobs.submit(gates, "r")
        waiting = await jobs.submit(gates, "w")
        await gates.wait_entered("r")
        assert await jobs.cancel(waiting.id) is True
        assert await jobs.status(waiting.id) is State.CANCELED  # at once
        assert await jobs.cancel(running.id) is True
        assert await jobs.status(running.id) in {State.CANCELING, State.CANCELED}
        info = await jobs.wait(running.id)
        assert info is not None
        assert info.state is State.CANCELED
        assert await jobs.cancel(running.id) is False
        assert "w" not in gates.order  # the canceled waiting job never ran


async def test_retry_runs_the_same_id_again(make_store: MakeStore) -> None:
    calls = 0

    async def flaky(ctx: Context) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            msg = "first time fails"
            raise RuntimeError(msg)
        return "second time works"

    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(flaky)
        failed = await jobs.wait(ref.id)
        assert failed is not None
        assert (failed.state, failed.attempts) == (State.FAILED, 1)
        again = await jobs.retry(ref.id)
        assert again.id == ref.id
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts, info.result, info.error) == (
            State.SUCCEEDED,
            2,
            "second time works",
            None,
        )
        with pytest.raises(JobStateError, match="succeeded"):
            await jobs.retry(ref.id)


async def test_retry_a_canceled_job(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(gates, "c")
        await gates.wait_entered("c")
        await jobs.cancel(ref.id)
        assert (await jobs.wait(ref.id)).state is State.CANCELED  # type: ignore[union-attr]
        await jobs.retry(ref.id)
        gates.open("c")
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts) == (State.SUCCEEDED, 2)


async def test_retry_of_running_job_is_refused(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(gates, "x")
        await gates.wait_entered("x")
        with pytest.raises(JobStateError):
            await jobs.retry(ref.id)
        gates.open("x")


# -- executor policies through the manager --------------------------------------------------


async def test_retry_policy_keeps_the_record_running_between_attempts(make_store: MakeStore) -> None:
    calls = 0

    async def flaky(ctx: Context) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            msg = f"fail {calls}"
            raise ConnectionError(msg)
        return "ok"

    async with JobManager(make_store()) as jobs:
        events = jobs.events()
        ref = await jobs.submit(flaky, retry=Retry(3, delay=0.01))
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts, info.result) == (State.SUCCEEDED, 3, "ok")
        states = []
        async for event in events:
            states.append(event.state)
            if event.state.is_done:
                break
        assert states == [State.CREATED, State.RUNNING, State.SUCCEEDED]


async def test_timeout_policy(make_store: MakeStore) -> None:
    async def hang(ctx: Context) -> None:
        await anyio.sleep_forever()

    with set_testing(True):  # no backoff wait (1 s by default) between the two attempts
        async with JobManager(make_store()) as jobs:
            ref = await jobs.submit(hang, timeout=0.05, retry=2)
            info = await jobs.wait(ref.id)
            assert info is not None
            assert (info.state, info.error_type, info.attempts) == (State.FAILED, "TimeoutError", 2)


async def test_cancel_between_retries_stops_the_executor(make_store: MakeStore) -> None:
    scheduled = anyio.Event()

    def on_event(event: instrumentation.HookEvent) -> None:
        if event.name == instrumentation.RETRY_SCHEDULED:
            scheduled.set()

    instrumentation.set_hooks([on_event])
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(boom, retry=Retry(5, delay=1000))
        with anyio.fail_after(5):
            await scheduled.wait()  # the first attempt failed; the executor waits to retry
            assert await jobs.status(ref.id) is State.RUNNING
            assert await jobs.cancel(ref.id) is True
            info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.attempts) == (State.CANCELED, 1)
