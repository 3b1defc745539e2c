"""The event publisher: ``events()`` subscriptions and what is pushed to them."""

from __future__ import annotations

from typing import final

from anyjob._events import EventStream
from anyjob._records import JobEvent, JobInfo, JobRecord
from anyjob._time import utcnow

__all__ = ["Publisher"]


@final
class Publisher:
    """Open event streams. Publishing with nobody subscribed costs one truth test."""

    __slots__ = ("streams",)

    def __init__(self) -> None:
        self.streams: list[EventStream] = []

    def subscribe(self, job_id: str | None) -> EventStream:
        """A new stream of *job_id*'s events (or every job's)."""
        stream = EventStream(job_id, on_close=self._unsubscribe)
        self.streams.append(stream)
        return stream

    def _unsubscribe(self, stream: EventStream) -> None:
        self.streams = [s for s in self.streams if s is not stream]

    def record(self, record: JobRecord, *, progress: bool) -> None:
        """Publish the current state (or progress) of a record this manager writes."""
        if self.streams:
            self._push(JobEvent(record.id, record.state, record.progress, record.message, utcnow()), progress)

    def info(self, info: JobInfo) -> None:
        """Publish a change another manager made, as the store reported it."""
        if self.streams:
            self._push(JobEvent(info.id, info.state, info.progress, info.message, utcnow()), False)

    def final(self, info: JobInfo) -> None:
        """A job another manager ran was deleted: its end, for the streams of that job not told yet.

        Streams of every job get no such event: they were told of the end by the feed,
        unless it ended and was deleted between two reads of it.
        """
        for stream in self.streams:
            if stream.job_id == info.id:
                stream.push_end(JobEvent(info.id, info.state, info.progress, info.message, utcnow()))

    def _push(self, event: JobEvent, progress: bool) -> None:  # noqa: FBT001 - private, hot
        for stream in self.streams:
            if stream.wants(event.job_id):
                stream.push(event, progress=progress)

    def end_all(self) -> None:
        """The manager closed: every stream ends after what it buffered."""
        for stream in self.streams:
            stream.end()
        self.streams.clear()
