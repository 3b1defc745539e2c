"""Several managers over one store: each sees, waits for and cancels the others' jobs."""

from __future__ import annotations

import anyio
import pytest
from tests.manager.support import Gates, MakeStore, until

from anyjob import JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_two_managers_share_one_store(make_store: MakeStore) -> None:
    store = make_store()
    gates = Gates()
    async with JobManager(store) as a, JobManager(store) as b:
        seen_by_b = b.events()
        ref = await a.submit(gates, "shared", labels={"from": "a"})
        await gates.wait_entered("shared")
        # Another manager learns of a's changes once a has written them (at once with a
        # MemoryStore, after a's next batch with other stores): follow b's events.
        with anyio.fail_after(5):
            async for event in seen_by_b:
                if event.job_id == ref.id and event.state is State.RUNNING:
                    break
        seen_by_b.close()
        info = await b.get(ref.id)
        assert info is not None
        assert info.state is State.RUNNING
        assert [i.id for i in await b.list(labels={"from": "a"})] == [ref.id]
        assert (await b.stats()).by_state[State.RUNNING] == 1

        # b waits for a's job: woken through the store's change feed.
        async with anyio.create_task_group() as tg:
            results: list[State] = []

            async def wait_in_b() -> None:
                done = await b.wait(ref.id)
                assert done is not None
                results.append(done.state)

            tg.start_soon(wait_in_b)
            await until(lambda: b._statistics().waiters == 1)
            await anyio.wait_all_tasks_blocked()  # b waits
            assert await b.cancel(ref.id) is True  # reaches the job running under a
        assert results == [State.CANCELED]
        assert gates.order == ["shared"]
        assert (await a.get(ref.id)).state is State.CANCELED  # type: ignore[union-attr]


async def test_cancel_a_waiting_job_of_another_manager(make_store: MakeStore) -> None:
    store = make_store()
    gates = Gates()
    async with JobManager(store, max_concurrency=1) as a, JobManager(store) as b:
        await a.submit(gates, "first")
        waiting = await a.submit(gates, "second")
        await gates.wait_entered("first")
        assert await b.cancel(waiting.id) is True
        assert await b.status(waiting.id) is State.CANCELED
        gates.open("first")
        await a.wait(waiting.id)
        await until(lambda: a._statistics().live == 0)  # nothing of a's left to start (or running)
        await anyio.wait_all_tasks_blocked()
        assert "second" not in gates.order
        assert (await a.get(waiting.id)).state is State.CANCELED  # type: ignore[union-attr]
