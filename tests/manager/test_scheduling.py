"""When jobs start: priority then FIFO, the concurrency limit, and delayed starts (delay, at)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from tests.manager.support import Gates, MakeStore

from anyjob import Context, JobManager, State

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_priority_then_fifo(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store(), max_concurrency=1) as jobs:
        await jobs.submit(gates, "blocker")
        await gates.wait_entered("blocker")
        for key, priority in [("low1", 0), ("high1", 5), ("low2", 0), ("high2", 5), ("mid", 1)]:
            await jobs.submit(gates, key, priority=priority)
        for key in ["blocker", "high1", "high2", "mid", "low1", "low2"]:
            gates.open(key)
    assert gates.order == ["blocker", "high1", "high2", "mid", "low1", "low2"]


async def test_max_concurrency_is_respected(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store(), max_concurrency=3) as jobs:
        refs = [await jobs.submit(gates, i) for i in range(10)]
        for i in range(3):
            await gates.wait_entered(i)
        await anyio.wait_all_tasks_blocked()  # a fourth would have started by now
        assert gates.running == 3
        for i in range(10):
            gates.open(i)
        for ref in refs:
            await jobs.wait(ref.id)
    assert gates.max_running == 3


async def test_unlimited_concurrency_never_blocks_a_startable_job(make_store: MakeStore) -> None:
    gates = Gates()
    async with JobManager(make_store()) as jobs:
        for i in range(20):
            await jobs.submit(gates, i)
        with anyio.fail_after(5):
            for i in range(20):
                await gates.wait_entered(i)  # all 20 run at once
        assert gates.running == 20
        for i in range(20):
            gates.open(i)


@pytest.mark.parametrize(
    "anyio_backend",
    [pytest.param("mock", id="trio-mockclock"), pytest.param(("asyncio", {}), id="asyncio")],
    indirect=True,
)
async def test_delay_and_at_schedule_the_start(
    anyio_backend: Any, store_kind: str, make_store: MakeStore
) -> None:
    virtual = anyio_backend[0] == "trio"
    if virtual and store_kind in {"sqlite", "postgres"}:
        pytest.skip("an autojumping clock jumps while the store's thread works: real time only")
    delay = 30.0 if virtual else 0.2
    started: dict[str, float] = {}

    async def stamp(ctx: Context) -> None:
        started[ctx.params] = anyio.current_time()

    async with JobManager(make_store()) as jobs:
        t0 = anyio.current_time()
        ref = await jobs.submit(stamp, "delay", delay=delay)
        assert await jobs.status(ref.id) is State.CREATED
        at = datetime.now(UTC) + timedelta(seconds=delay / 2)
        ref2 = await jobs.submit(stamp, "at", at=at)
        assert abs((ref2.scheduled_at - at).total_seconds()) < 0.01
        await jobs.submit(stamp, "now")
        await jobs.wait(ref.id)
        await jobs.wait(ref2.id)
    assert started["now"] < started["at"] < started["delay"]
    assert started["at"] - t0 >= delay / 2 * 0.9
    assert started["delay"] - t0 >= delay * 0.9
