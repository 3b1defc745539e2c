"""Group commit over the SQL stores: submits, claims and ends of many jobs share transactions."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from tests.manager.support import MakeStore

from anyjob import Context, JobError, JobManager, State

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.usefixtures("silent"),
    pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]),
]


async def ok(ctx: Context) -> int:
    return int(ctx.params)


def counting(store: Any) -> list[tuple[int, int]]:
    """Record (new records, updates) of each transaction *store* writes."""
    writes: list[tuple[int, int]] = []
    write = store._write

    def counted(conn: Any, records: Any, told: Any, updates: Any, origin: str) -> list[bool]:
        writes.append((len(records), len(updates)))
        return write(conn, records, told, updates, origin)

    store._write = counted
    return writes


async def test_concurrent_submits_share_transactions(make_store: MakeStore) -> None:
    store = make_store()
    writes = counting(store)
    async with JobManager(store) as jobs:
        refs: list[Any] = []

        async def submit(i: int) -> None:
            refs.append(await jobs.submit(ok, i))

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(submit, i)
        assert len(refs) == 50  # each returned once its job was committed
        for ref in refs:
            info = await jobs.wait(ref.id)
            assert info is not None
            assert info.state is State.SUCCEEDED
    inserts = [records for records, _updates in writes if records]
    assert sum(inserts) == 50
    assert len(inserts) <= 5, inserts  # not one transaction each


async def test_one_by_one_a_job_costs_about_one_transaction(make_store: MakeStore) -> None:
    # A loop of submits: each insert shares its transaction with the claim of the job
    # before and the end of the one before that, instead of three transactions a job.
    store = make_store()
    writes = counting(store)
    async with JobManager(store) as jobs:
        for i in range(40):
            await jobs.submit(ok, i)
    assert sum(records for records, _ in writes) == 40
    # Measured: 40 jobs in 45-61 transactions; 80 before (an insert, then a claim and an end).
    assert len(writes) <= 70, len(writes)


async def test_a_taken_id_refuses_only_its_own_submit(make_store: MakeStore) -> None:
    store = make_store()
    async with JobManager(store) as jobs:
        await jobs.submit(ok, 0, id="taken")
        results: dict[str, object] = {}

        async def submit(job_id: str) -> None:
            try:
                results[job_id] = (await jobs.submit(ok, 1, id=job_id)).id
            except JobError as exc:
                results[job_id] = exc

        async with anyio.create_task_group() as tg:
            for job_id in ("a", "b", "taken", "c", "d"):
                tg.start_soon(submit, job_id)
        assert isinstance(results.pop("taken"), JobError)
        assert results == {job_id: job_id for job_id in "abcd"}
        for job_id in "abcd":
            info = await jobs.wait(job_id)
            assert info is not None
            assert info.state is State.SUCCEEDED
        taken = await jobs.get("taken")
        assert taken is not None
        assert taken.params == 0  # untouched
