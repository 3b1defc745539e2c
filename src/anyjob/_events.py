"""Event subscriptions: ordered per job, never blocking the jobs, progress coalesced."""

from __future__ import annotations

from collections import deque
from typing import Final, final

import anyio.lowlevel

from anyjob._records import JobEvent
from anyjob._signal import Signal

__all__ = ["EventStream"]

#: Past this many undelivered events the oldest are dropped (and counted in ``dropped``).
MAX_BUFFERED: Final = 100_000


@final
class _ProgressSlot:
    """A place in the queue holding the latest progress of one job until it is delivered."""

    __slots__ = ("event",)

    def __init__(self, event: JobEvent) -> None:
        self.event = event


@final
class EventStream:
    """An async iterator of :class:`~anyjob.JobEvent`, from ``JobManager.events()``.

    The subscription starts when the stream is made. Events of one job arrive in
    the order they happened. A consumer slower than the jobs never blocks them:
    undelivered progress reports of a job are coalesced into the latest one
    (state changes are all kept), and past ``MAX_BUFFERED`` undelivered events the
    oldest are dropped and counted in :attr:`dropped`. The iterator ends when the
    manager closes (after the events already buffered), or on :meth:`close`.
    """

    __slots__ = ("_closed", "_ended", "_job_id", "_on_close", "_progress", "_queue", "_wakeup", "dropped")

    def __init__(self, job_id: str | None, on_close: object = None) -> None:
        self._job_id = job_id
        self._queue: deque[JobEvent | _ProgressSlot] = deque()
        self._progress: dict[str, _ProgressSlot] = {}
        self._wakeup = Signal()
        self._closed = False
        self._ended = False  # the latest state pushed is a done one
        self._on_close = on_close
        #: How many events were dropped because the consumer fell too far behind.
        self.dropped = 0

    @property
    def job_id(self) -> str | None:
        """The job this stream follows, or ``None`` for every job."""
        return self._job_id

    @property
    def pending(self) -> int:
        """How many events are buffered, ready to be taken without waiting."""
        return len(self._queue)

    def wants(self, job_id: str) -> bool:
        """Whether events of *job_id* belong in this stream."""
        return self._job_id is None or self._job_id == job_id

    def push(self, event: JobEvent, *, progress: bool) -> None:
        """Queue *event* (a progress report when *progress*, else a state change)."""
        if self._closed:
            return
        if progress:
            slot = self._progress.get(event.job_id)
            if slot is not None:
                slot.event = event  # coalesce: the undelivered report is replaced in place
                return
            slot = self._progress[event.job_id] = _ProgressSlot(event)
            self._queue.append(slot)
        else:
            # Later progress must queue after this state change.
            self._progress.pop(event.job_id, None)
            self._queue.append(event)
            self._ended = event.state.is_done
        if len(self._queue) > MAX_BUFFERED:
            dropped = self._queue.popleft()
            if isinstance(dropped, _ProgressSlot) and self._progress.get(dropped.event.job_id) is dropped:
                del self._progress[dropped.event.job_id]
            self.dropped += 1
        self._wakeup.fire()

    def push_end(self, event: JobEvent) -> None:
        """Queue the end of this stream's job unless the latest state pushed was already an end."""
        if not self._ended:
            self.push(event, progress=False)

    def end(self) -> None:
        """End the stream after the buffered events (the manager closed)."""
        self._closed = True
        self._wakeup.fire()

    def close(self) -> None:
        """Stop the subscription now; buffered events are discarded."""
        self._queue.clear()
        self._progress.clear()
        self.end()
        if callable(self._on_close):
            self._on_close(self)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> JobEvent:
        await anyio.lowlevel.checkpoint()  # every await of the library is one, buffered events too
        while True:
            if self._queue:
                item = self._queue.popleft()
                if isinstance(item, _ProgressSlot):
                    event = item.event
                    if self._progress.get(event.job_id) is item:
                        del self._progress[event.job_id]
                    return event
                return item
            if self._closed:
                raise StopAsyncIteration
            await self._wakeup.wait()
