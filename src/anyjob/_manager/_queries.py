"""The JobManager's queries: one job's info, status and end; many jobs' ends, pages and counts.

:class:`Queries` is a base class of :class:`~anyjob.JobManager` holding only these public
methods (the manager's file stays readable); the answers come from its sink and store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from anyjob._limits import check_created, check_id, check_labels, check_page
from anyjob._manager._completion import AsCompleted, check_ids
from anyjob._manager._lifecycle import Phase, check_filter_name, check_states
from anyjob._records import JobInfo, JobStatistics
from anyjob._state import State
from anyjob._time import to_seconds
from anyjob.stores._base import JobQuery

if TYPE_CHECKING:
    from anyjob._checkpoint import Checkpoint
    from anyjob._manager._recorder import Recorder
    from anyjob._manager._sink import BatchSink, MemorySink
    from anyjob._manager._waiters import Waiters
    from anyjob.stores._base import Store

__all__ = ["Queries"]


class Queries:
    """``get``, ``status``, ``wait``, ``as_completed``, ``list`` and ``stats`` (see ``JobManager``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        _checkpoint: Checkpoint
        _phase: Phase
        _recorder: Recorder
        _sink: MemorySink | BatchSink
        _store: Store
        _waiters: Waiters

        def _refuse(self, action: str, *, queries: bool = False) -> None: ...

    async def get(self, id: str) -> JobInfo | None:  # noqa: A002
        """The job's :class:`~anyjob.JobInfo`, or ``None`` if no job has that id.

        Raises:
            ManagerClosedError: The manager was never entered.
        """
        check_id(id)
        self._refuse("get a job", queries=True)
        return await self._sink.get(id)

    async def status(self, id: str) -> State | None:  # noqa: A002
        """The job's state, or ``None`` if no job has that id."""
        check_id(id)
        self._refuse("get a job's status", queries=True)
        entry = self._recorder.entries.get(id)
        if entry is not None:
            await self._checkpoint()
            return entry.record.state
        info = await self._sink.get(id)
        return None if info is None else info.state

    async def wait(self, id: str, timeout: float | timedelta | None = None) -> JobInfo | None:  # noqa: A002
        """Wait until the job is done and return its info.

        Event-driven: no polling. When *timeout* expires first, returns the
        latest info (the job still executing or waiting). After the manager
        closed, returns the stored info at once.

        Returns:
            The info, or ``None`` if no job has that id.

        Raises:
            ManagerClosedError: The manager was never entered.
            TypeError, ValueError: Invalid *id* or *timeout*.
        """
        check_id(id)
        seconds = math.inf if timeout is None else to_seconds(timeout, "timeout", allow_inf=True)
        self._refuse("wait for a job", queries=True)
        closed = self._phase is Phase.CLOSED
        sink = self._sink
        return await self._waiters.wait_for(
            id, sink.get, seconds, closed=closed, read_is_last_await=sink.reads_now
        )

    def as_completed(self, ids: Iterable[str], timeout: float | timedelta | None = None) -> AsCompleted:
        """An async iterator of the jobs' :class:`~anyjob.JobInfo`, one per id, as they finish.

        Jobs already finished come first (in the order given), then each as it ends.
        Waiting is event-driven, as :meth:`wait` is; every step is a checkpoint.
        After the manager closed, yields the stored info of each job at once.

        Raises:
            ManagerClosedError: The manager was never entered.
            TypeError, ValueError: Invalid *ids* (a str, an invalid id, one given twice) or *timeout*.
            JobNotFoundError: (while iterating, before anything is yielded) an unknown id.
            TimeoutError: (while iterating) *timeout* passed with jobs not finished.
        """
        checked = check_ids(ids)
        seconds = math.inf if timeout is None else to_seconds(timeout, "timeout", allow_inf=True)
        self._refuse("wait for jobs", queries=True)
        return AsCompleted(
            checked,
            seconds,
            waiters=self._waiters,
            sink=self._sink,
            live=self._recorder.entries,
            closed=lambda: self._phase is Phase.CLOSED,
            checkpoint=self._checkpoint,
        )

    async def list(
        self,
        *,
        state: State | Iterable[State] | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Jobs matching every filter given, newest first.

        Args:
            state: One :class:`~anyjob.State` or several.
            name: Only jobs with this name.
            labels: Only jobs having all these pairs.
            created_after: Only jobs created after this aware datetime.
            created_before: Only jobs created before this aware datetime.
            limit: At most this many (1..1000).
            offset: Skip this many first (>= 0).

        Raises:
            ManagerClosedError: The manager was never entered.
            TypeError, ValueError: An invalid filter.
        """
        limit, offset = check_page(limit, offset)
        query = JobQuery(
            states=check_states(state),
            name=check_filter_name(name),
            labels=None if labels is None else check_labels(labels),
            created_after=check_created(created_after, "created_after"),
            created_before=check_created(created_before, "created_before"),
            limit=limit,
            offset=offset,
        )
        self._refuse("list jobs", queries=True)
        await self._sink.settle()
        return await self._store.query(query)

    async def stats(
        self, *, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> JobStatistics:
        """Counts over the jobs (all, or those with *name* and/or all *labels*).

        Raises:
            ManagerClosedError: The manager was never entered.
        """
        name = check_filter_name(name)
        checked = None if labels is None else check_labels(labels)
        self._refuse("count jobs", queries=True)
        await self._sink.settle()
        return await self._store.statistics(name=name, labels=checked)
