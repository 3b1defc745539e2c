"""Jobs without retry or timeout run in place in a worker (one cancel scope per job, no Job object)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from tests.manager.support import Gates, MakeStore, boom, ok

from anyjob import Context, JobManager, JobStateError, State, instrumentation

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_a_worker_runs_on_after_one_of_its_jobs_is_canceled(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store(), max_concurrency=1) as jobs:  # one worker runs all three
        first = await jobs.submit(gates, 1)
        second = await jobs.submit(gates, 2)
        third = await jobs.submit(ok, 3)
        await gates.wait_entered(1)
        assert await jobs.cancel(first.id) is True
        await gates.wait_entered(2)  # the next job started, in a fresh scope
        assert await jobs.status(second.id) is State.RUNNING
        gates.open(2)
        second_info = await jobs.wait(second.id)
        third_info = await jobs.wait(third.id)
        first_info = await jobs.get(first.id)
    assert first_info is not None
    assert first_info.state is State.CANCELED
    assert second_info is not None
    assert second_info.state is State.SUCCEEDED
    assert second_info.result == 2
    assert third_info is not None
    assert third_info.result == 3


async def test_canceling_one_job_leaves_the_others_running(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        refs = [await jobs.submit(gates, i) for i in range(3)]
        for i in range(3):
            await gates.wait_entered(i)
        assert await jobs.cancel(refs[1].id) is True
        assert (await jobs.wait(refs[1].id)).state is State.CANCELED  # type: ignore[union-attr]
        assert await jobs.status(refs[0].id) is State.RUNNING
        assert await jobs.status(refs[2].id) is State.RUNNING
        gates.open(0)
        gates.open(2)
        infos = [await jobs.wait(refs[i].id) for i in (0, 2)]
    assert [info.state for info in infos if info] == [State.SUCCEEDED, State.SUCCEEDED]


async def test_a_job_that_swallows_its_cancellation_ends_canceled_and_the_next_one_is_not_hit(
    make_store: MakeStore,
) -> None:
    entered = anyio.Event()

    async def swallow(ctx: Context) -> str:
        entered.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            return "ignored the cancel"
        return "never"

    async def later(ctx: Context) -> str:
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        return "fine"

    async with JobManager(make_store(), max_concurrency=1) as jobs:
        stubborn = await jobs.submit(swallow)
        following = await jobs.submit(later)
        await entered.wait()
        assert await jobs.cancel(stubborn.id) is True
        stubborn_info = await jobs.wait(stubborn.id)
        following_info = await jobs.wait(following.id)
    assert stubborn_info is not None
    assert stubborn_info.state is State.CANCELED
    assert stubborn_info.result is None
    assert following_info is not None
    assert following_info.state is State.SUCCEEDED
    assert following_info.result == "fine"


async def test_a_job_can_cancel_itself(make_store: MakeStore) -> None:
    holder: dict[str, JobManager] = {}
    reached: list[str] = []

    async def self_cancel(ctx: Context) -> None:
        assert await holder["jobs"].cancel(ctx.id) is True
        await anyio.lowlevel.checkpoint()  # the cancellation arrives here at the latest
        reached.append("after")  # pragma: no cover - must not run

    async with JobManager(make_store()) as jobs:
        holder["jobs"] = jobs
        ref = await jobs.submit(self_cancel)
        info = await jobs.wait(ref.id)
        after = await jobs.wait((await jobs.submit(ok, 1)).id)
    assert info is not None
    assert info.state is State.CANCELED
    assert reached == []
    assert after is not None
    assert after.state is State.SUCCEEDED


async def test_an_error_raised_while_unwinding_a_cancel_is_kept(make_store: MakeStore) -> None:
    entered = anyio.Event()

    async def unwind_badly(ctx: Context) -> None:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            msg = "cleanup failed"
            raise RuntimeError(msg)

    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(unwind_badly)
        await entered.wait()
        await jobs.cancel(ref.id)
        info = await jobs.wait(ref.id)
    assert info is not None
    assert info.state is State.CANCELED
    assert info.error == "cleanup failed"
    assert info.error_type == "RuntimeError"


async def test_set_result_and_a_stale_context(make_store: MakeStore) -> None:
    kept: list[Context] = []

    async def partial(ctx: Context) -> None:
        kept.append(ctx)
        ctx.set_result({"rows": 3})
        ctx.set_progress(0.5, "half")
        assert ctx.id
        assert ctx.name == "partial"
        assert ctx.labels == {"k": "v"}
        assert ctx.params == [1]
        ctx.logger.debug("test.partial")

    async with JobManager(make_store()) as jobs:
        ref = await jobs.submit(partial, [1], name="partial", labels={"k": "v"})
        info = await jobs.wait(ref.id)
    assert info is not None
    assert info.result == {"rows": 3}
    assert info.progress == 0.5
    assert info.message == "half"
    with pytest.raises(JobStateError, match="has ended"):
        kept[0].set_progress(1.0)
    with pytest.raises(JobStateError, match="has ended"):
        kept[0].set_result(None)


async def test_hooks_see_every_job_run_in_place(make_store: MakeStore) -> None:
    seen: list[tuple[str, State, str | None, float | None]] = []

    def hook(event: instrumentation.HookEvent) -> None:
        error = None if event.error is None else type(event.error).__name__
        seen.append((event.name, event.state, error, event.duration))

    instrumentation.set_hooks([hook])
    entered = anyio.Event()

    async def hang(ctx: Context) -> None:
        entered.set()
        await anyio.sleep_forever()

    async with JobManager(make_store(), max_concurrency=1) as jobs:
        await jobs.wait((await jobs.submit(ok)).id)
        await jobs.wait((await jobs.submit(boom)).id)
        hanging = await jobs.submit(hang)
        await entered.wait()
        await jobs.cancel(hanging.id)
        await jobs.wait(hanging.id)
    names = [(name, state, error) for name, state, error, _ in seen]
    assert names == [
        ("anyjob.job_started", State.RUNNING, None),
        ("anyjob.job_succeeded", State.SUCCEEDED, None),
        ("anyjob.job_started", State.RUNNING, None),
        ("anyjob.job_failed", State.FAILED, "ValueError"),
        ("anyjob.job_started", State.RUNNING, None),
        ("anyjob.job_canceled", State.CANCELED, None),
    ]
    durations = [duration for name, _, _, duration in seen if name != "anyjob.job_started"]
    assert all(duration is not None and duration >= 0 for duration in durations)
