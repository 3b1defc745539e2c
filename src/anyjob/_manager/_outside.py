"""The JobManager's methods for work that runs outside its workers: tracked blocks and external jobs.

:class:`OutsideWork` is a base class of :class:`~anyjob.JobManager` holding only these
public methods (the manager's file stays readable); the work is done by the manager's
parts: :class:`~anyjob._manager._track.Tracked` and :class:`~anyjob._manager._external.Reports`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from anyjob._limits import check_id, check_name
from anyjob._manager._intake import new_record
from anyjob._manager._specs import TRACKED_SPEC
from anyjob._manager._track import Tracked
from anyjob._records import JobInfo, JobRef

if TYPE_CHECKING:
    from typing import NoReturn

    from anyjob._manager._entry import Entry
    from anyjob._manager._external import Reports
    from anyjob._manager._recorder import Recorder
    from anyjob._manager._sink import BatchSink, MemorySink
    from anyjob._manager._specs import SpecRegistry

__all__ = ["OutsideWork"]


class OutsideWork:
    """``track``, ``create``, ``update``, ``complete`` and ``fail`` (see ``JobManager``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        _origin: str
        _recorder: Recorder
        _registry: SpecRegistry
        _reports: Reports
        _sink: MemorySink | BatchSink

        def _refuse(self, action: str, *, queries: bool = False) -> None: ...

        async def _abandon(self, entry: Entry, action: str) -> NoReturn: ...

    def track(
        self,
        name: str,
        params: Any = None,
        *,
        labels: Mapping[str, str] | None = None,
        id: str | None = None,  # noqa: A002 - the contract's name
    ) -> Tracked:
        """Track a block of your own code as a job: ``async with jobs.track(name) as ctx:``.

        The block is the job, run in the caller's task (``max_concurrency``, priority
        and delays do not apply). It is RUNNING once entered; SUCCEEDED when the block
        exits normally (its result: what ``ctx.set_result`` was given); FAILED when it
        raises an ``Exception`` (recorded, then re-raised); CANCELED when
        ``jobs.cancel(ctx.id)`` is called (the block is cancelled at its next checkpoint
        and the ``async with`` absorbs that, as ``anyio.move_on_after`` does) or when the
        caller's own scope is cancelled (recorded, then propagated). Entering is a
        checkpoint. ``retry`` of a tracked job raises ``JobStateError``.

        Args:
            name: The job's name.
            params: JSON-safe data, copied; the block sees it as ``ctx.params``.
            labels: ``str -> str`` pairs to filter by.
            id: The job's id; by default a new UUIDv7 string.

        Returns:
            An async context manager giving the job's :class:`~anyjob.Context`; it can
            be entered once (again: ``RuntimeError``).

        Raises:
            TypeError, ValueError: Invalid arguments (here, at the call); nothing is stored.
            ManagerClosedError: (entering) the manager is not open.
            JobError: (entering) a job with that id exists.
        """
        record, _ = new_record(
            self._registry,
            TRACKED_SPEC,
            params,
            origin=self._origin,
            name=check_name(name),  # given: a tracked block has no function to name it after
            labels=labels,
            job_id=id,
            priority=0,
            delay=None,
            at=None,
        )
        return Tracked(record, self._recorder, self._sink, self._refuse, self._abandon)

    async def create(
        self,
        name: str,
        params: Any = None,
        *,
        labels: Mapping[str, str] | None = None,
        id: str | None = None,  # noqa: A002 - the contract's name
        message: str | None = None,
        stale_after: float | timedelta | None = None,
    ) -> JobRef:
        """Record an external job: CREATED, run by no worker; its work reports in by id.

        A worker in another task, process or service (through any manager over the same
        store) reports with :meth:`update`, then :meth:`complete` or :meth:`fail`.
        ``cancel(id)`` of it: CREATED becomes CANCELED at once; RUNNING becomes
        CANCELING, and the reporter's next report raises ``JobCanceledError`` (the job
        is CANCELED then). ``retry(id)`` of a failed or canceled one puts it back to
        CREATED (``attempts`` + 1) for its reporter to take up again.

        Args:
            name: The job's name.
            params: JSON-safe data, copied (the reporter reads it with ``get``).
            labels: ``str -> str`` pairs to filter by.
            id: The job's id; by default a new UUIDv7 string.
            message: A first message for people.
            stale_after: Seconds (or a ``timedelta``): a RUNNING job with no report for
                that long ends FAILED with ``error_type == "JobLostError"`` (any open
                manager over the store notices within about a second).

        Raises:
            ManagerClosedError: The manager is not open.
            JobError: A job with that id exists.
            TypeError, ValueError: Invalid arguments (``stale_after`` <= 0 or NaN
                included); nothing is stored.
        """
        record = self._reports.new_record(
            name,
            params,
            labels=labels,
            job_id=id,
            message=message,
            stale_after=stale_after,
            registry=self._registry,
        )
        self._refuse("create a job")
        return await self._reports.create(record, generated_id=id is None)

    async def update(
        self,
        id: str,  # noqa: A002 - the contract's name
        progress: float | None = None,
        message: str | None = None,
    ) -> JobInfo:
        """Report on an external job: progress in ``[0, 1]`` and/or a message.

        The first report makes a CREATED job RUNNING. A report with neither is a sign
        of life (it keeps ``stale_after`` away).

        Returns:
            The job's info after the report.

        Raises:
            ManagerClosedError: The manager is not open.
            JobNotFoundError: No job has that id.
            JobStateError: It is done already, or not an external job.
            JobCanceledError: It was canceled: it is CANCELED now; stop its work.
            TypeError, ValueError: An invalid progress or message; nothing changed.
        """
        check_id(id)
        self._refuse("report on a job")
        return await self._reports.update(id, progress, message)

    async def complete(self, id: str, result: Any = None) -> JobInfo:  # noqa: A002 - the contract's name
        """End an external job SUCCEEDED with *result* (JSON-safe, copied).

        A job never updated passes through RUNNING (``started_at`` and ``ended_at`` set).

        Raises:
            ManagerClosedError: The manager is not open.
            JobNotFoundError: No job has that id.
            JobStateError: It is done already, or not an external job.
            JobCanceledError: It was canceled: it is CANCELED now.
            TypeError, ValueError: *result* is not JSON-safe; nothing changed.
        """
        check_id(id)
        self._refuse("complete a job")
        return await self._reports.complete(id, result)

    async def fail(self, id: str, error: str | BaseException) -> JobInfo:  # noqa: A002 - the contract's name
        """End an external job FAILED with *error*: a message, or an exception.

        ``error`` is the message; ``error_type`` the exception's qualified type name
        (``None`` for a str); ``traceback`` the exception's, when it was raised.

        Raises:
            ManagerClosedError: The manager is not open.
            JobNotFoundError: No job has that id.
            JobStateError: It is done already, or not an external job.
            JobCanceledError: It was canceled: it is CANCELED now.
            TypeError: *error* is neither a str nor an exception; nothing changed.
        """
        check_id(id)
        self._refuse("fail a job")
        return await self._reports.fail(id, error)
