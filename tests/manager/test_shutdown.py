"""Leaving a manager: running jobs are waited for, what is left is canceled, nothing is lost."""

from __future__ import annotations

import anyio
import pytest
from tests.manager.support import Gates, MakeStore, until

import anyjob
from anyjob import Context, JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_shutdown_waits_for_running_jobs(make_store: MakeStore) -> None:
    store = make_store()
    entered = anyio.Event()
    release = anyio.Event()

    async def short(ctx: Context) -> str:
        entered.set()
        await release.wait()
        return "finished"

    async def release_once_leaving(jobs: JobManager) -> None:
        await until(lambda: jobs._statistics().phase == "closing")  # the manager is leaving
        await anyio.wait_all_tasks_blocked()  # and waits for the job
        release.set()

    async with anyio.create_task_group() as tg:
        async with JobManager(store) as jobs:
            ref = await jobs.submit(short)
            await entered.wait()
            tg.start_soon(release_once_leaving, jobs)
    info = await store.get(ref.id)
    assert info is not None
    assert info.state is State.SUCCEEDED


async def test_shutdown_cancels_what_is_left_and_loses_nothing(make_store: MakeStore) -> None:
    store = make_store()
    gates = Gates()
    async with JobManager(store, max_concurrency=1, shutdown_timeout=0.1) as jobs:
        running = await jobs.submit(gates, "stuck")
        queued = await jobs.submit(gates, "queued")
        later = await jobs.submit(gates, "later", delay=3600)
        await gates.wait_entered("stuck")
    for ref in (running, queued, later):
        info = await store.get(ref.id)
        assert info is not None
        assert info.state is State.CANCELED, ref
        assert info.ended_at is not None
    assert gates.order == ["stuck"]


async def test_shutdown_of_a_job_that_ignores_cancellation(make_store: MakeStore) -> None:
    # Real time: the job holds out past shutdown_timeout (0.05 s) for 0.3 s, a generous margin.
    store = make_store()
    entered = anyio.Event()

    async def stubborn(ctx: Context) -> None:
        entered.set()
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.3)

    async with JobManager(store, shutdown_timeout=0.05) as jobs:
        ref = await jobs.submit(stubborn)
        await entered.wait()
    info = await store.get(ref.id)
    assert info is not None
    assert info.state is State.CANCELED


async def test_body_exception_still_records_everything(make_store: MakeStore) -> None:
    store = make_store()
    gates = Gates()
    refs: list[anyjob.JobRef] = []

    async def crash() -> None:
        async with JobManager(store, shutdown_timeout=0.05) as jobs:
            refs.append(await jobs.submit(gates, "g"))
            await gates.wait_entered("g")
            msg = "app crashed"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="app crashed"):
        await crash()
    ref = refs[0]
    info = await store.get(ref.id)
    assert info is not None
    assert info.state is State.CANCELED


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_keyboard_interrupt_in_a_job_is_recorded_and_raised(backend: str, make_store: MakeStore) -> None:
    # A plain test: on asyncio a KeyboardInterrupt in a task leaves the event loop itself.
    store = make_store()
    refs: list[anyjob.JobRef] = []

    async def interrupt(ctx: Context) -> None:
        raise KeyboardInterrupt

    async def main() -> None:
        async with JobManager(store) as jobs:
            refs.append(await jobs.submit(interrupt))
            await anyio.sleep_forever()

    with pytest.raises((KeyboardInterrupt, BaseExceptionGroup)) as caught:
        anyio.run(main, backend=backend)
    if isinstance(caught.value, BaseExceptionGroup):
        assert caught.value.subgroup(KeyboardInterrupt) is not None
    info = anyio.run(store.get, refs[0].id)
    assert info is not None
    assert info.state is State.FAILED
    assert info.error_type == "KeyboardInterrupt"
