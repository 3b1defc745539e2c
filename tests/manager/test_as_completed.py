"""``JobManager.as_completed``: many jobs waited for at once, each yielded as it finishes."""

from __future__ import annotations

import gc

import anyio
import pytest
from tests.manager.support import Gates, MakeStore, boom, ok, until

from anyjob import JobInfo, JobManager, JobNotFoundError, ManagerClosedError, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def collect(jobs: JobManager, ids: list[str], timeout: float | None = None) -> list[JobInfo]:
    return [info async for info in jobs.as_completed(ids, timeout=timeout)]


async def test_finished_jobs_first_in_the_order_given_then_each_as_it_ends(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        done_b = await jobs.submit(ok, "b", id="done-b")
        done_a = await jobs.submit(boom, id="done-a")
        await jobs.wait(done_b.id)
        await jobs.wait(done_a.id)
        late = await jobs.submit(gates, "late", id="late")
        early = await jobs.submit(gates, "early", id="early")
        await gates.wait_entered("late")
        await gates.wait_entered("early")
        seen: list[tuple[str, State]] = []
        async with anyio.create_task_group() as tg:

            async def consume() -> None:
                async for info in jobs.as_completed([late.id, done_b.id, early.id, done_a.id]):
                    seen.append((info.id, info.state))
                    if info.id == "early":
                        gates.open("late")

            tg.start_soon(consume)
            await until(lambda: len(seen) == 2)
            gates.open("early")
        assert seen == [
            ("done-b", State.SUCCEEDED),
            ("done-a", State.FAILED),
            ("early", State.SUCCEEDED),
            ("late", State.SUCCEEDED),
        ]
        assert jobs._statistics().waiters == 0


async def test_many_jobs_each_yielded_once(make_store: MakeStore) -> None:
    async with JobManager(make_store(), max_concurrency=4) as jobs:
        ids = [(await jobs.submit(ok, number)).id for number in range(60)]
        infos = await collect(jobs, ids)
        assert sorted(info.id for info in infos) == sorted(ids)
        assert {info.state for info in infos} == {State.SUCCEEDED}
        assert jobs._statistics().waiters == 0


async def test_an_unknown_id_raises_before_anything_is_yielded(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(ok, id="known")
        await jobs.wait(ref.id)
        with pytest.raises(JobNotFoundError, match="'missing'") as raised:
            await collect(jobs, ["known", "missing"])
        assert raised.value.job_id == "missing"
        assert jobs._statistics().waiters == 0


async def test_timeout_raises_timeout_error_and_releases_the_waiters(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        done = await jobs.submit(ok, id="done")
        await jobs.wait(done.id)
        stuck = await jobs.submit(gates, "stuck")
        iterator = jobs.as_completed([done.id, stuck.id], timeout=0.05)
        assert (await anext(iterator)).id == "done"
        with pytest.raises(TimeoutError, match="1 job"):
            await anext(iterator)
        assert jobs._statistics().waiters == 0
        gates.open("stuck")


async def test_leaving_early_releases_the_waiters(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        done = await jobs.submit(ok, id="done")
        await jobs.wait(done.id)
        stuck = await jobs.submit(gates, "stuck")
        iterator = jobs.as_completed([done.id, stuck.id])
        assert (await anext(iterator)).id == "done"
        assert jobs._statistics().waiters == 1
        await iterator.aclose()
        assert jobs._statistics().waiters == 0
        with pytest.raises(StopAsyncIteration):
            await anext(iterator)
        async for _ in jobs.as_completed([done.id, stuck.id]):
            break  # the iterator is garbage now: its waiters go with it
        gc.collect()
        assert jobs._statistics().waiters == 0
        gates.open("stuck")


async def test_a_cancelled_consumer_releases_the_waiters_and_every_step_is_a_checkpoint(
    make_store: MakeStore,
) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        done = await jobs.submit(ok, id="done")
        await jobs.wait(done.id)
        stuck = await jobs.submit(gates, "stuck")
        with anyio.CancelScope() as scope:
            iterator = jobs.as_completed([done.id, stuck.id])
            scope.cancel()
            await anext(iterator)  # a checkpoint even with an info ready
        assert scope.cancelled_caught
        assert jobs._statistics().waiters == 0
        with anyio.move_on_after(0.05):
            await collect(jobs, [stuck.id])
        assert jobs._statistics().waiters == 0
        gates.open("stuck")


async def test_after_the_manager_closed_it_answers_from_the_store(make_store: MakeStore) -> None:
    store = make_store()
    async with JobManager(store, shutdown_timeout=0) as jobs:
        ref = await jobs.submit(ok, id="done")
        await jobs.wait(ref.id)
        waiting = await jobs.submit(ok, delay=3600, id="never")
    infos = await collect(jobs, [waiting.id, ref.id])
    assert [(info.id, info.state) for info in infos] == [("never", State.CANCELED), ("done", State.SUCCEEDED)]


async def test_jobs_of_another_manager_sharing_the_store(make_store: MakeStore) -> None:
    gates = Gates()
    store = make_store()
    async with JobManager(store) as a, JobManager(store) as b:
        ref = await b.submit(gates, "b")
        await gates.wait_entered("b")
        async with anyio.create_task_group() as tg:
            seen: list[JobInfo] = []

            async def consume() -> None:
                seen.extend(await collect(a, [ref.id], timeout=30))

            tg.start_soon(consume)
            await until(lambda: a._statistics().waiters == 1)
            gates.open("b")
        assert [(info.id, info.state) for info in seen] == [(ref.id, State.SUCCEEDED)]


async def test_bad_ids_are_refused_at_the_call() -> None:
    jobs = JobManager()
    with pytest.raises(ManagerClosedError):
        jobs.as_completed(["a"])
    async with jobs:
        with pytest.raises(TypeError, match="not a single str"):
            jobs.as_completed("abc")
        with pytest.raises(TypeError, match="iterable"):
            jobs.as_completed(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            jobs.as_completed([1])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="given twice"):
            jobs.as_completed(["a", "b", "a"])
        with pytest.raises(ValueError, match="job id"):
            jobs.as_completed(["ok", ""])
        with pytest.raises(ValueError, match="timeout"):
            jobs.as_completed(["a"], timeout=-1)
        assert await collect(jobs, []) == []
        assert jobs._statistics().waiters == 0
