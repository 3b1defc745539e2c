"""How a manager writes to a store it reaches only through the async protocol: batched, coalesced."""

from __future__ import annotations

import anyio.lowlevel
import pytest
from tests.manager.support import MakeStore

from anyjob import Context, JobInfo, JobManager, State
from conftest import DelegatingStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_writes_to_a_protocol_store_are_coalesced(make_store: MakeStore) -> None:
    async def chatty(ctx: Context) -> None:
        for i in range(1, 501):
            ctx.set_progress(i / 500)
            if i % 50 == 0:
                await anyio.lowlevel.checkpoint()

    store = DelegatingStore(make_store())  # counts the batches, whatever store is behind it
    async with JobManager(store) as jobs:
        ref = await jobs.submit(chatty)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.progress) == (State.SUCCEEDED, 1.0)
        assert store.batches < 50  # 500 reports, a few batches


async def test_the_claims_of_concurrent_workers_share_a_batch(make_store: MakeStore) -> None:
    # Group commit: 100 jobs submitted at once are claimed (CREATED -> RUNNING in the store)
    # by their workers meanwhile, and those claims go in a few batches, not one each.
    gate = anyio.Event()
    all_running = anyio.Event()
    runs: list[str] = []

    async def held(ctx: Context) -> None:
        runs.append(ctx.id)
        if len(runs) == 100:
            all_running.set()
        await gate.wait()

    store = DelegatingStore(make_store())
    async with JobManager(store) as jobs:
        refs = await jobs.submit_many(held, [None] * 100)
        await all_running.wait()
        claimed = store.batches
        gate.set()
        for ref in refs:
            info = await jobs.wait(ref.id)
            assert info is not None
            assert info.state is State.SUCCEEDED
    assert sorted(runs) == sorted(ref.id for ref in refs)  # each ran once
    assert claimed < 20, claimed


async def test_a_claim_withdrawn_before_its_batch_is_written_changes_nothing() -> None:
    from anyjob._manager._entry import Entry
    from anyjob._manager._sink import BatchSink
    from anyjob._records import JobRecord, now_timestamp
    from anyjob.stores import MemoryStore

    class Held(DelegatingStore):
        """Its first batch waits for ``release``."""

        def __init__(self) -> None:
            super().__init__(MemoryStore())
            self.entered = anyio.Event()
            self.release = anyio.Event()

        async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
            if not self.entered.is_set():
                self.entered.set()
                await self.release.wait()
            return await super().apply(updates, origin=origin)

    store = Held()
    now = now_timestamp()
    first, second = (JobRecord(job_id, "f", State.CREATED, {}, None, 0, now, now, "me") for job_id in "ab")
    await store.insert(first)
    await store.insert(second)
    sink = BatchSink(store, "me", lambda entry: None)  # type: ignore[arg-type]
    answers: dict[str, bool] = {}

    async def claim(record: JobRecord) -> None:
        answers[record.id] = await sink.claim(Entry(None, record, None))  # type: ignore[arg-type]

    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        tg.start_soon(claim, first)
        await store.entered.wait()  # the first claim's batch is on its way
        async with anyio.create_task_group() as inner:
            inner.start_soon(claim, second)
            await anyio.lowlevel.checkpoint()
            inner.cancel_scope.cancel()  # withdrawn while its batch waits for the first
        store.release.set()
        await sink.settle()
        tg.cancel_scope.cancel()
    assert answers == {"a": True}
    stored = await store.get_record("b")
    assert stored is not None
    assert stored.state is State.CREATED  # nothing of the withdrawn claim was written
    assert stored.attempts == 0


async def test_an_end_whose_answer_was_lost_is_told_though_the_store_is_slow_to_read() -> None:
    # The end's COMMIT lands but its answer is lost (the connection dropped as it
    # committed); written again, the store refuses it (the job is ended already); the
    # manager then reads the record to learn whether that end is its own, and that read
    # fails once too: it reads again, with backoff, instead of leaving the waiter hanging.
    from anyjob import StoreError

    class Flaky(DelegatingStore):
        def __init__(self) -> None:
            super().__init__()
            self.lose_answer = False
            self.failed_reads = 0

        async def apply(self, updates, *, origin):  # type: ignore[no-untyped-def]
            applied = await super().apply(updates, origin=origin)
            if self.lose_answer and any(update.fields.get("state") is State.SUCCEEDED for update in updates):
                self.lose_answer = False
                msg = "connection lost as it committed"
                raise StoreError(msg)
            return applied

        async def get_record(self, job_id):  # type: ignore[no-untyped-def]
            if not self.lose_answer and self.failed_reads == 0:
                self.failed_reads += 1
                msg = "still away"
                raise StoreError(msg)
            return await super().get_record(job_id)

    store = Flaky()
    started = anyio.Event()
    finish = anyio.Event()

    async def job(ctx: Context) -> str:
        started.set()
        await finish.wait()
        return "done"

    infos: list[JobInfo | None] = []
    told = anyio.Event()
    async with JobManager(store) as jobs:
        ref = await jobs.submit(job)
        await started.wait()
        async with anyio.create_task_group() as tg:

            async def waiting() -> None:
                infos.append(await jobs.wait(ref.id))
                told.set()

            tg.start_soon(waiting)
            await anyio.wait_all_tasks_blocked()  # the waiter read RUNNING and waits
            store.lose_answer = True
            finish.set()
            with anyio.fail_after(10):  # without reading again: never told
                await told.wait()
    assert [(info.state, info.result) for info in infos if info is not None] == [(State.SUCCEEDED, "done")]
    assert store.failed_reads == 1
