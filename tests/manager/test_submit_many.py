"""``submit_many``: many jobs in one call, validated first, stored together, queued in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from tests.manager.support import Gates, MakeStore, ok

from anyjob import JobManager, ManagerClosedError, State
from anyjob._manager._intake import MAX_BATCH
from anyjob.stores import JobQuery
from conftest import DelegatingStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def _stored(store: Any) -> list[Any]:
    found: list[Any] = await store.query(JobQuery(limit=1000))
    return found


async def test_refs_in_order_and_every_job_runs(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        params = [{"i": i} for i in range(25)]
        refs = await jobs.submit_many(ok, params, name="batch", labels={"team": "data"})
        assert [ref.name for ref in refs] == ["batch"] * 25
        assert [ref.id for ref in refs] == sorted(ref.id for ref in refs)  # new ids, increasing
        assert len({ref.id for ref in refs}) == 25
        for i, ref in enumerate(refs):
            info = await jobs.wait(ref.id)
            assert info is not None
            assert (info.state, info.params, info.result, info.labels) == (
                State.SUCCEEDED,
                {"i": i},
                {"i": i},
                {"team": "data"},
            )
        assert await jobs.submit_many(ok, iter(())) == []
        assert len(await jobs.list(limit=100)) == 25


async def test_fifo_within_a_priority_and_higher_first(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        blocker = await jobs.submit(gates, "block")
        await gates.wait_entered("block")
        low = await jobs.submit_many(gates, [0, 1, 2, 3, 4])
        high = await jobs.submit_many(gates, [10, 11], priority=5)
        for key in [0, 1, 2, 3, 4, 10, 11]:
            gates.open(key)
        gates.open("block")
        for ref in [blocker, *low, *high]:
            info = await jobs.wait(ref.id)
            assert info is not None
            assert info.state is State.SUCCEEDED
    assert gates.order == ["block", 10, 11, 0, 1, 2, 3, 4]


async def test_delay_applies_to_every_job(make_store: MakeStore) -> None:
    async with JobManager(make_store()) as jobs:
        before = datetime.now(UTC)
        later = await jobs.submit_many(ok, [1, 2], delay=timedelta(hours=1))
        soon = await jobs.submit_many(ok, [3, 4], delay=0.01)
        for ref in later:
            assert ref.scheduled_at >= before + timedelta(minutes=59)
            assert await jobs.status(ref.id) is State.CREATED
        for ref in soon:
            info = await jobs.wait(ref.id)
            assert info is not None
            assert info.state is State.SUCCEEDED
        for ref in later:
            assert await jobs.status(ref.id) is State.CREATED  # still waiting: the others ran
            assert await jobs.cancel(ref.id)


@pytest.mark.parametrize(
    ("params", "kwargs", "error", "match"),
    [
        ([1, object(), 3], {}, TypeError, r"params\[1\] must be JSON-safe"),
        ([1, 2, {"x": float("nan")}], {}, ValueError, r"params\[2\]\['x'\] must be JSON-safe"),
        ([1, 2], {"priority": "high"}, TypeError, "priority"),
        ([1, 2], {"labels": {"k": 1}}, TypeError, "label"),
        ([1, 2], {"delay": -1}, ValueError, "delay"),
        ([1, 2], {"name": ""}, ValueError, "name"),
        ([1, 2], {"retry": "twice"}, TypeError, "retry"),
        ("abc", {}, TypeError, "iterable of each job's params"),
        ({"a": 1}, {}, TypeError, "iterable of each job's params"),
        (42, {}, TypeError, "iterable of each job's params"),
        ([None] * (MAX_BATCH + 1), {}, ValueError, "at most 10000 jobs per call"),
    ],
)
async def test_one_bad_argument_stores_nothing(
    make_store: MakeStore, params: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    store = make_store()
    async with JobManager(store) as jobs:
        with pytest.raises(error, match=match):
            await jobs.submit_many(ok, params, **kwargs)
        assert await jobs.list() == []
        assert await _stored(store) == []


async def test_the_largest_batch_is_taken(make_store: MakeStore) -> None:
    store = make_store()
    async with JobManager(store) as jobs:
        refs = await jobs.submit_many(ok, [None] * MAX_BATCH, delay=3600)
        assert len(refs) == MAX_BATCH
        assert (await jobs.stats()).by_state[State.CREATED] == MAX_BATCH


async def test_cancelled_before_its_checkpoint_stores_nothing(make_store: MakeStore) -> None:
    store = make_store()
    async with JobManager(store) as jobs:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await jobs.submit_many(ok, [1, 2, 3])
        assert scope.cancelled_caught
        with anyio.CancelScope() as scope:
            scope.cancel()
            await jobs.submit_many(ok, [])  # an empty batch is a checkpoint all the same
        assert scope.cancelled_caught
        assert await jobs.list() == []
        assert await _stored(store) == []


async def test_refused_unless_open(make_store: MakeStore) -> None:
    jobs = JobManager(make_store())
    with pytest.raises(ManagerClosedError):
        await jobs.submit_many(ok, [1])
    async with jobs:
        pass
    with pytest.raises(ManagerClosedError):
        await jobs.submit_many(ok, [1])


async def test_one_store_call_for_the_batch(make_store: MakeStore, store_kind: str) -> None:
    store = make_store()
    calls: list[tuple[str, int]] = []
    if store_kind == "protocol":  # no insert_many: the manager inserts one record at a time
        insert = store.insert

        async def one(record: Any, *, origin: str | None = None) -> None:
            calls.append(("insert", 1))
            await insert(record, origin=origin)

        store.insert = one
    elif store_kind != "memory":  # a durable store: one transaction for the batch
        write = store._write

        def counted(conn: Any, records: Any, told: Any, updates: Any, origin: str) -> list[bool]:
            if records:  # (the claims and ends follow in other transactions)
                calls.append(("transaction", len(records)))
            return write(conn, records, told, updates, origin)

        store._write = counted
    async with JobManager(store) as jobs:
        refs = await jobs.submit_many(ok, list(range(40)))
        expected = {
            "memory": [],
            "protocol": [("insert", 1)] * 40,
            "sqlite": [("transaction", 40)],
            "postgres": [("transaction", 40)],
        }
        assert calls == expected[store_kind]
        for i, ref in enumerate(refs):
            info = await jobs.wait(ref.id)
            assert info is not None
            assert (info.state, info.result) == (State.SUCCEEDED, i)


async def test_another_manager_sees_the_batch(make_store: MakeStore) -> None:
    store = make_store()
    async with JobManager(store) as submitter, JobManager(store) as other:
        waiting = await submitter.submit_many(ok, ["a", "b"], delay=3600, labels={"batch": "1"})
        ran = await submitter.submit_many(ok, ["c", "d"])
        for ref, params in zip(waiting, ["a", "b"], strict=True):
            info = await other.get(ref.id)
            assert info is not None
            assert (info.state, info.params, info.labels) == (State.CREATED, params, {"batch": "1"})
        for ref, params in zip(ran, ["c", "d"], strict=True):
            info = await other.wait(ref.id)
            assert info is not None
            assert (info.state, info.result) == (State.SUCCEEDED, params)
        for ref in waiting:
            assert await submitter.cancel(ref.id)


class _StuckBatches(DelegatingStore):
    """A protocol-only store whose ``insert_many`` writes, then never answers (its caller is cancelled)."""

    def __init__(self) -> None:
        super().__init__()
        self.written = anyio.Event()

    async def insert_many(self, records: Any, *, origin: str | None = None) -> None:
        await self.inner.insert_many(records, origin=origin)
        self.written.set()
        await anyio.sleep_forever()


@pytest.mark.parametrize("batched", [True, False])
async def test_cancelled_while_the_store_writes_leaves_nothing_to_run(batched: bool) -> None:
    store: Any = _StuckBatches() if batched else DelegatingStore()
    written = store.written if batched else anyio.Event()
    if not batched:  # one insert per record: the third never answers
        insert, count = store.insert, [0]

        async def stuck(record: Any, *, origin: str | None = None) -> None:
            await insert(record, origin=origin)
            count[0] += 1
            if count[0] == 3:
                written.set()
                await anyio.sleep_forever()

        store.insert = stuck
    async with JobManager(store) as jobs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(jobs.submit_many, ok, [1, 2, 3, 4])
            await written.wait()
            tg.cancel_scope.cancel()
        stored = await _stored(store)
        assert len(stored) == (4 if batched else 3)
        assert {info.state for info in stored} == {State.CANCELED}  # withdrawn: nobody runs them
        assert (await jobs.stats()).active == 0


class _SlowBatches(DelegatingStore):
    """A protocol-only store whose ``insert_many`` waits for ``release`` before it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.inserting = anyio.Event()
        self.release = anyio.Event()

    async def insert_many(self, records: Any, *, origin: str | None = None) -> None:
        self.inserting.set()
        with anyio.CancelScope(shield=True):
            await self.release.wait()
        await self.inner.insert_many(records, origin=origin)


async def test_a_batch_the_store_takes_after_closing_is_recorded_canceled_and_refused() -> None:
    store = _SlowBatches()
    outcome: list[BaseException] = []

    async def submit_late(jobs: JobManager) -> None:
        try:
            await jobs.submit_many(ok, [1, 2, 3])
        except ManagerClosedError as exc:
            outcome.append(exc)

    jobs = JobManager(store)
    async with anyio.create_task_group() as tg:
        async with jobs:
            tg.start_soon(submit_late, jobs)
            await store.inserting.wait()
        store.release.set()  # the manager is closed now; the store takes the records
    assert len(outcome) == 1
    stored = await _stored(store)
    assert [info.params for info in stored] == [3, 2, 1]
    assert {info.state for info in stored} == {State.CANCELED}  # not CREATED records nobody will run
    assert jobs._statistics().live == 0
