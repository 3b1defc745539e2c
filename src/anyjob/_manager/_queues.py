"""The ready queue (what starts next) and the delayed queue (what starts later, and when)."""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, final

import anyio

from anyjob._signal import Signal

if TYPE_CHECKING:
    from anyjob._manager._entry import Entry

__all__ = ["DelayedQueue", "ReadyQueue"]


@final
class ReadyQueue:
    """Jobs ready to start: higher priority first, first in first out within one priority.

    One deque per priority in use: pushing and popping are O(1) for the usual few
    priorities, with no tuple per job as a heap would need.
    Invariant: ``size == sum(map(len, _levels.values()))`` and ``_order`` holds the
    negated keys of ``_levels``, ascending. ``size`` is a plain attribute, read on every
    step of a worker's loop (``len()`` would be a Python-level call there).
    """

    __slots__ = ("_levels", "_order", "size")

    def __init__(self) -> None:
        self._levels: dict[int, deque[Entry]] = {}
        self._order: list[int] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def push(self, entry: Entry) -> None:
        """Queue *entry* behind the others of its priority."""
        priority = entry.record.priority
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = deque()
            bisect.insort(self._order, -priority)
        level.append(entry)
        self.size += 1

    def pop(self) -> Entry | None:
        """The next entry to start, or ``None`` when the queue is empty."""
        if not self.size:
            return None
        for negative in self._order:
            level = self._levels[-negative]
            if level:
                self.size -= 1
                entry = level.popleft()
                if not level and len(self._levels) > 1:  # forget priorities no longer in use
                    del self._levels[-negative]
                    self._order.remove(negative)
                return entry
        return None  # pragma: no cover - _size says there is one


@final
class DelayedQueue:
    """Jobs waiting for their ``delay``/``at``, ordered by the loop-clock time they are due.

    An entry taken out early (:meth:`discard`, when it is canceled) has ``entry.due`` set
    back to ``None`` and stays in the heap until :meth:`run` pops it or the heap is rebuilt
    without such entries, which happens once they are half of it (amortized O(1) a
    discard; a canceled job is never kept until its due time).
    Invariant: ``_stale`` entries of ``_heap`` have ``due is None``.
    """

    __slots__ = ("_heap", "_seq", "_stale", "_wakeup")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Entry]] = []
        self._seq = 0
        self._stale = 0
        self._wakeup = Signal()

    def __len__(self) -> int:
        return len(self._heap) - self._stale

    def discard(self, entry: Entry) -> None:
        """Take *entry* (in the queue: ``entry.due`` is set) out; it will not be released."""
        entry.due = None
        self._stale += 1
        if self._stale * 2 >= len(self._heap):
            self._heap = [item for item in self._heap if item[2].due is not None]
            heapq.heapify(self._heap)
            self._stale = 0
            self._wakeup.fire()  # run() holds the old heap: it takes the new one

    def push(self, entry: Entry, due: float) -> None:
        """Start *entry* at *due* (``anyio.current_time()`` seconds)."""
        entry.due = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, entry))
        self._wakeup.fire()

    async def run(self, release: Callable[[Entry], None]) -> None:
        """Forever: hand each entry that is still waiting to *release* when it is due."""
        while True:
            heap = self._heap
            now = anyio.current_time()
            while heap and heap[0][0] <= now:
                entry = heapq.heappop(heap)[2]
                if entry.due is not None:
                    entry.due = None
                    release(entry)
                else:
                    self._stale -= 1
            if heap:
                with anyio.move_on_after(heap[0][0] - now):
                    await self._wakeup.wait()
            else:
                await self._wakeup.wait()
