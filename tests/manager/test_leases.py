"""Many managers over one durable store: leases, lost managers' jobs, shared waiting jobs.

A "lost" manager is made deterministic by a store that stops renewing its lease (the process
stands for one killed with ``kill -9``: its jobs are never written again); the real kill is in
``tests/test_processes_leases.py``.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from tests.conftest import DelegatingStore
from tests.manager.support import until

from anyjob import Context, JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]

LEASE = 0.3


class Silenced(DelegatingStore):
    """*inner*; once ``lost`` is set its manager's lease is no longer renewed, nor its jobs written."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.lost = False

    async def renew_lease(self, origin, lease):  # type: ignore[no-untyped-def]
        if self.lost:
            await anyio.lowlevel.checkpoint()
            return None
        return await super().renew_lease(origin, lease)

    async def release_lease(self, origin):  # type: ignore[no-untyped-def]
        if self.lost:
            await anyio.lowlevel.checkpoint()
            return None
        return await super().release_lease(origin)

    async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
        if self.lost:  # a dead process writes nothing
            await anyio.lowlevel.checkpoint()
            return [False for _ in updates]
        return await super().apply(updates, origin=origin)


class Runs:
    """A registered job function: which manager ran which job, and a gate to hold them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.entered = anyio.Event()
        self.release = anyio.Event()

    def fn(self, manager: str) -> Any:
        async def work(ctx: Context) -> str:
            self.calls.append((manager, ctx.id))
            self.entered.set()
            if ctx.params == "hold":
                await self.release.wait()
            return manager

        return work


async def seen_as(jobs: JobManager, job_id: str, state: State) -> None:
    """Until *jobs* reads *job_id* in *state* from the store (another manager writes it)."""
    with anyio.fail_after(10):
        while (await jobs.status(job_id)) is not state:  # noqa: ASYNC110 - another manager's write: no event here
            await anyio.sleep(0.01)


def _shared(store_kind: str, make_store: Any) -> tuple[Any, Any]:
    """Two ways to one durable store's records: (A's store, B's store)."""
    if store_kind == "memory":
        pytest.skip("leases and shared work are for stores other processes reach")
    store = make_store()
    if store_kind == "protocol":
        return Silenced(store.inner), DelegatingStore(store.inner)
    return Silenced(store), store


async def test_waiting_jobs_left_by_a_closing_manager_run_on_another(
    store_kind: str, make_store: Any
) -> None:
    raw_a, store_b = _shared(store_kind, make_store)
    runs = Runs()
    async with JobManager(raw_a, max_concurrency=1, shutdown_timeout=0) as a:
        a.register(runs.fn("a"), "work")
        held = await a.submit("work", "hold")
        waiting = [await a.submit("work", i) for i in range(3)]
        await runs.entered.wait()
    states = [await a.status(ref.id) for ref in waiting]
    assert await a.status(held.id) is State.CANCELED  # running: canceled as before
    assert states == [State.CREATED] * 3  # left waiting, for any manager
    async with JobManager(store_b, lease=LEASE) as b:
        b.register(runs.fn("b"), "work")
        for ref in waiting:
            info = await b.wait(ref.id, timeout=10)
            assert info is not None
            assert (info.state, info.result) == (State.SUCCEEDED, "b")
    ran = sorted(job_id for _, job_id in runs.calls if job_id != held.id)
    assert ran == sorted(ref.id for ref in waiting)  # each once


async def test_jobs_of_unregistered_functions_are_canceled_on_close_as_before(
    store_kind: str, make_store: Any
) -> None:
    raw_a, _ = _shared(store_kind, make_store)
    release = anyio.Event()

    async def hold(ctx: Context) -> None:
        await release.wait()

    async with JobManager(raw_a, max_concurrency=1, shutdown_timeout=0) as a:
        await a.submit(hold)
        later = await a.submit(hold)
    assert await a.status(later.id) is State.CANCELED


async def test_a_lost_managers_running_job_ends_failed_with_job_lost_error(
    store_kind: str, make_store: Any
) -> None:
    raw_a, store_b = _shared(store_kind, make_store)
    runs = Runs()
    async with JobManager(store_b, lease=LEASE) as b:
        b.register(runs.fn("b"), "work")
        async with JobManager(raw_a, lease=LEASE, shutdown_timeout=0) as a:
            a.register(runs.fn("a"), "work")
            ref = await a.submit("work", "hold")
            await runs.entered.wait()
            await until(lambda: a._statistics().executing == 1)
            await seen_as(b, ref.id, State.RUNNING)
            raw_a.lost = True  # A is "killed": no more lease renewals, no more writes
            info = await b.wait(ref.id, timeout=10 * LEASE + 5)
            assert info is not None
            assert (info.state, info.error_type) == (State.FAILED, "JobLostError")
            runs.release.set()
    assert runs.calls == [("a", ref.id)]  # not run again: not resumable


async def test_a_lost_managers_resumable_job_runs_again_elsewhere(store_kind: str, make_store: Any) -> None:
    raw_a, store_b = _shared(store_kind, make_store)
    runs = Runs()
    async with JobManager(store_b, lease=LEASE) as b:
        b.register(runs.fn("b"), "work", resumable=True)
        async with JobManager(raw_a, lease=LEASE, shutdown_timeout=0) as a:
            a.register(runs.fn("a"), "work", resumable=True)
            ref = await a.submit("work", "hold")
            await runs.entered.wait()
            await seen_as(b, ref.id, State.RUNNING)
            raw_a.lost = True
            runs.release.set()  # B's run goes straight through; A's writes are lost
            info = await b.wait(ref.id, timeout=10 * LEASE + 5)
            assert info is not None
            assert (info.state, info.result, info.attempts) == (State.SUCCEEDED, "b", 2)
    assert [manager for manager, _ in runs.calls] == ["a", "b"]


async def test_a_lost_managers_waiting_jobs_run_elsewhere(store_kind: str, make_store: Any) -> None:
    raw_a, store_b = _shared(store_kind, make_store)
    runs = Runs()
    async with JobManager(store_b, lease=LEASE) as b:
        b.register(runs.fn("b"), "work")
        async with JobManager(raw_a, lease=LEASE, max_concurrency=1, shutdown_timeout=0) as a:
            a.register(runs.fn("a"), "work")
            await a.submit("work", "hold")
            await runs.entered.wait()
            queued = await a.submit("work", 7)  # waits behind the held one
            await seen_as(b, queued.id, State.CREATED)
            raw_a.lost = True
            info = await b.wait(queued.id, timeout=10 * LEASE + 5)
            assert info is not None
            assert (info.state, info.result) == (State.SUCCEEDED, "b")
            runs.release.set()


@pytest.mark.parametrize(
    ("lease", "error"), [(0, ValueError), (-1, ValueError), (math.nan, ValueError), ("1", TypeError)]
)
def test_an_invalid_lease_is_refused(lease: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="lease"):
        JobManager(lease=lease)


def test_resumable_must_be_a_bool() -> None:
    async def work(ctx: Context) -> None:
        pass

    with pytest.raises(TypeError, match="resumable"):
        JobManager().register(work, resumable=1)  # type: ignore[arg-type]
