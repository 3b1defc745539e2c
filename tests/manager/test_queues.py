"""The ready queue on its own: priority order, FIFO within a priority, no empty levels kept."""

from __future__ import annotations

from anyjob import State


def test_ready_queue_orders_and_forgets_unused_priorities() -> None:
    from anyjob._manager._entry import Entry
    from anyjob._manager._queues import ReadyQueue
    from anyjob.stores import JobRecord

    def entry(priority: int, name: str) -> Entry:
        record = JobRecord(
            id=name, name=name, state=State.CREATED, labels={}, params=None, priority=priority,
            created=0.0, scheduled=0.0, owner="o",
        )  # fmt: skip
        return Entry(None, record, None)  # type: ignore[arg-type]

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
