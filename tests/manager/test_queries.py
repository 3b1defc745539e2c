"""Asking a manager about jobs: get, status, list, stats; deleting finished ones (cleanup, retention)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import Gates, MakeStore, boom, ok

from anyjob import Context, JobManager, JobNotFoundError, State, StoreError

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_unknown_ids(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        assert await jobs.get("nope") is None
        assert await jobs.status("nope") is None
        assert await jobs.wait("nope", timeout=1) is None
        with pytest.raises(JobNotFoundError) as info:
            await jobs.cancel("nope")
        assert info.value.job_id == "nope"
        with pytest.raises(JobNotFoundError):
            await jobs.retry("nope")
        for call in (jobs.get, jobs.status, jobs.cancel):
            with pytest.raises(TypeError):
                await call(42)  # type: ignore[operator]


async def test_waiting_is_distinct_from_not_found(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        first = await jobs.submit(gates, "a")
        second = await jobs.submit(gates, "b")
        await gates.wait_entered("a")
        assert await jobs.status(first.id) is State.RUNNING
        assert await jobs.status(second.id) is State.CREATED
        gates.open("a")
        gates.open("b")


async def test_progress_is_visible_live(make_store: MakeStore) -> None:
    step = anyio.Event()
    proceed = anyio.Event()

    async def reporter(ctx: Context) -> None:
        ctx.set_progress(0.4, "loading")
        step.set()
        await proceed.wait()

    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(reporter)
        await step.wait()
        info = await jobs.get(ref.id)
        assert info is not None
        assert (info.state, info.progress, info.message) == (State.RUNNING, 0.4, "loading")
        proceed.set()


async def test_a_job_sees_itself_running_before_it_first_yields(make_store: MakeStore) -> None:
    # The store may put off moving a starting job in its state index until somebody looks:
    # whoever looks (list, stats, another manager) sees it RUNNING.
    holder: dict[str, JobManager] = {}
    seen: dict[str, Any] = {}

    async def looks(ctx: Context) -> None:
        jobs = holder["jobs"]
        seen["listed"] = [info.id for info in await jobs.list(state=State.RUNNING)]
        seen["stats"] = (await jobs.stats()).by_state[State.RUNNING]
        seen["created"] = (await jobs.stats()).by_state[State.CREATED]

    async def quick(ctx: Context) -> int:
        return 1

    async with JobManager(make_store(), max_concurrency=1) as jobs:
        holder["jobs"] = jobs
        first = await jobs.submit(quick)  # ends without yielding, before `looks` starts
        ref = await jobs.submit(looks)
        info = await jobs.wait(ref.id)
        assert (await jobs.stats()).by_state[State.SUCCEEDED] == 2
        assert await jobs.list(state=State.RUNNING) == []
    assert info is not None
    assert info.state is State.SUCCEEDED, info.error
    assert seen == {"listed": [ref.id], "stats": 1, "created": 0}
    assert first.id != ref.id


# -- list and stats -------------------------------------------------------------------------


async def test_list_validation(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        with pytest.raises(ValueError):
            await jobs.list(limit=1001)
        with pytest.raises(ValueError):
            await jobs.list(limit=0)
        with pytest.raises(ValueError):
            await jobs.list(offset=-1)
        with pytest.raises(TypeError):
            await jobs.list(state="failed")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await jobs.list(created_after=datetime(2020, 1, 1))  # noqa: DTZ001
        assert await jobs.list(limit=1000) == []


async def test_list_filters_and_pages_newest_first(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        refs = []
        for i in range(6):
            fn = ok if i % 3 else boom
            labels = {"project": "a" if i < 3 else "b", "i": str(i)}
            refs.append(await jobs.submit(fn, i, name=f"n{i % 2}", labels=labels))
        for ref in refs:
            await jobs.wait(ref.id)
        everything = await jobs.list()
        assert [info.id for info in everything] == [ref.id for ref in reversed(refs)]
        failed = await jobs.list(state=State.FAILED)
        assert {info.params for info in failed} == {0, 3}
        both = await jobs.list(state=[State.FAILED, State.SUCCEEDED])
        assert len(both) == 6
        assert [i.params for i in await jobs.list(name="n1")] == [5, 3, 1]
        assert [i.params for i in await jobs.list(labels={"project": "b"})] == [5, 4, 3]
        assert [i.params for i in await jobs.list(labels={"project": "b", "i": "4"})] == [4]
        assert [i.params for i in await jobs.list(limit=2, offset=1)] == [4, 3]
        assert await jobs.list(offset=10) == []
        middle = everything[3].created_at
        newer = await jobs.list(created_after=middle)
        assert all(info.created_at > middle for info in newer)
        older = await jobs.list(created_before=middle)
        assert all(info.created_at < middle for info in older)
        assert len(newer) + len(older) + 1 >= 6 - 1  # timestamps may tie at µs resolution


async def test_stats(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        empty = await jobs.stats()
        assert empty.total == 0
        assert set(empty.by_state) == set(State)
        assert empty.success_rate == 0.0
        assert empty.average_duration == 0.0
        for i in range(3):
            await jobs.wait((await jobs.submit(ok, i, labels={"team": "x"})).id)
        await jobs.wait((await jobs.submit(boom, labels={"team": "y"})).id)
        await jobs.submit(gates, "run", name="gate")
        await gates.wait_entered("run")
        stats = await jobs.stats()
        assert stats.total == 5
        assert stats.by_state[State.SUCCEEDED] == 3
        assert stats.by_state[State.FAILED] == 1
        assert stats.by_state[State.RUNNING] == 1
        assert stats.by_state[State.CANCELED] == 0
        assert stats.active == 1
        assert stats.success_rate == pytest.approx(0.75)
        assert stats.average_duration >= 0.0
        assert stats.by_name == {"ok": 3, "boom": 1, "gate": 1}
        assert (await jobs.stats(name="ok")).total == 3
        team_y = await jobs.stats(labels={"team": "y"})
        assert team_y.total == 1
        assert team_y.by_state[State.FAILED] == 1
        assert team_y.success_rate == 0.0
        assert (await jobs.stats(name="nothing")).total == 0
        gates.open("run")


# -- cleanup and retention ------------------------------------------------------------------


async def test_cleanup_deletes_only_old_finished_jobs(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        done = await jobs.submit(ok)
        await jobs.wait(done.id)
        running = await jobs.submit(gates, "r")
        await gates.wait_entered("r")
        assert await jobs.cleanup(timedelta(hours=1)) == 0
        assert await jobs.cleanup(0) == 1
        assert await jobs.get(done.id) is None
        assert await jobs.status(running.id) is State.RUNNING
        with pytest.raises(ValueError):
            await jobs.cleanup(-1)
        gates.open("r")


async def test_retention_outlives_a_store_that_fails_for_a_while() -> None:
    """A StoreError in the retention loop (the database away) skips a round; the manager lives on."""
    from tests.conftest import DelegatingStore

    class Flaky(DelegatingStore):
        failures = 3

        async def delete_finished(self, ended_before):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                await anyio.lowlevel.checkpoint()
                raise StoreError("the database is away")
            return await super().delete_finished(ended_before)

    store = Flaky()
    async with JobManager(store, retention=0.05) as jobs:
        ref = await jobs.submit(ok)
        assert (await jobs.wait(ref.id)) is not None
        with anyio.fail_after(10):
            while await jobs.get(ref.id) is not None:  # noqa: ASYNC110 - deleting emits no event
                await anyio.sleep(0.01)
        assert store.failures == 0
        after = await jobs.submit(ok)  # still open and working
        assert (await jobs.wait(after.id)) is not None


async def test_retention_cleans_up_automatically(make_store: MakeStore) -> None:
    async with JobManager(make_store(), retention=0.05) as jobs:
        ref = await jobs.submit(ok)
        assert (await jobs.wait(ref.id)) is not None
        # Deleting emits no event to wait on: poll, with a generous margin (cleanup runs every 25 ms).
        with anyio.fail_after(10):
            while await jobs.get(ref.id) is not None:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert (await jobs.stats()).total == 0
