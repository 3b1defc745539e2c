"""The queues on their own: priority order, FIFO within a priority, no empty levels kept;
the delayed queue releasing by due time and forgetting what was taken out."""

from __future__ import annotations

import anyio
import pytest

from anyjob import State
from anyjob._manager._entry import Entry
from anyjob._manager._queues import DelayedQueue, ReadyQueue
from anyjob.stores import JobRecord


def entry(priority: int, name: str) -> Entry:
    record = JobRecord(
        id=name, name=name, state=State.CREATED, labels={}, params=None, priority=priority,
        created=0.0, scheduled=0.0, owner="o",
    )  # fmt: skip
    return Entry(None, record, None)  # type: ignore[arg-type]


def test_ready_queue_orders_and_forgets_unused_priorities() -> None:
    queue = ReadyQueue()
    for priority, name in [(0, "a"), (5, "b"), (-3, "c"), (5, "d"), (0, "e"), (100, "f")]:
        queue.push(entry(priority, name))
    assert len(queue) == 6
    order = []
    while (item := queue.pop()) is not None:
        order.append(item.record.id)
    assert order == ["f", "b", "d", "a", "e", "c"]
    assert len(queue) == 0
    assert len(queue._levels) <= 1


def test_delayed_queue_discard_counts_at_once_and_frees_the_heap() -> None:
    queue = DelayedQueue()
    entries = [entry(0, str(number)) for number in range(10)]
    for number, item in enumerate(entries):
        queue.push(item, 1000.0 + number)
    for item in entries[:4]:
        queue.discard(item)
        assert item.due is None
    assert len(queue) == 6
    assert len(queue._heap) == 10  # fewer than half taken out: kept until popped
    queue.discard(entries[4])
    assert len(queue) == 5
    assert sorted(item.record.id for _, _, item in queue._heap) == ["5", "6", "7", "8", "9"]  # rebuilt
    for item in entries[5:]:
        queue.discard(item)
    assert (len(queue), queue._heap) == (0, [])


@pytest.mark.anyio
async def test_delayed_queue_releases_only_what_is_still_in_it() -> None:
    queue = DelayedQueue()
    released: list[str] = []
    entries = [entry(0, str(number)) for number in range(6)]
    now = anyio.current_time()
    for number, item in enumerate(entries):
        queue.push(item, now + 0.01 * number)
    queue.discard(entries[1])  # stays in the heap (1 of 6), skipped when popped
    queue.discard(entries[3])
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.run, lambda item: released.append(item.record.id))
            while len(released) < 4:  # noqa: ASYNC110 - the queue announces nothing
                await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
    assert released == ["0", "2", "4", "5"]
    assert (len(queue), queue._stale) == (0, 0)
