"""Context: what a job's function receives, and the Reporter protocol it reports to.

A :class:`Context` belongs to one run of one job. It reports progress and results to
a :class:`Reporter` (a :class:`~anyjob.Job`, or a job a JobManager runs itself), from
the event loop thread or, handed over to it, from an anyio worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from threading import get_ident
from typing import Any, Protocol, final

import anyio.from_thread
import attrs

from anyjob._exceptions import JobStateError
from anyjob._limits import check_message, check_progress

__all__ = ["Context", "Reporter"]


class Reporter(Protocol):
    """What a :class:`Context` reports to: a :class:`~anyjob.Job`, or a job a JobManager runs itself."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def params(self) -> Any: ...

    _base_logger: Any
    #: The number of the run executing now, 0 when none is.
    _live_run: int
    _result: Any

    def _report(self, progress: float, message: str | None) -> None:
        """Take a validated progress report of the live run."""
        ...


@final
@attrs.define(eq=False, init=False)
class Context:
    """What the job's function receives: its identity, params, a logger, and ways to report.

    A context belongs to one run of one job. Reporting through it after that run
    ended raises :class:`~anyjob.JobStateError`.

    :meth:`set_progress` and :meth:`set_result` may also be called from a worker
    thread started with ``anyio.to_thread.run_sync``: the report is handed to the
    event loop thread (``anyio.from_thread.run_sync``) and the call returns once it
    was taken there, so every report arrives, in order, where the job's listeners
    run. From any other thread they raise ``RuntimeError``.
    """

    _job: Reporter
    _run_no: int
    _logger: Any
    #: The event loop thread the run belongs to (reports from other threads go through it).
    _thread: int

    def __init__(self, job: Reporter, run_no: int) -> None:
        self._job = job
        self._run_no = run_no
        self._logger = None
        self._thread = get_ident()

    @property
    def id(self) -> str:
        """The job's id."""
        return self._job.id

    @property
    def name(self) -> str:
        """The job's name."""
        return self._job.name

    @property
    def labels(self) -> Mapping[str, str]:
        """The job's labels (read-only)."""
        return self._job.labels

    @property
    def params(self) -> Any:
        """The params this run was started with."""
        return self._job.params

    @property
    def logger(self) -> Any:
        """A structlog logger bound with the job's id and name (``job_id``, ``job_name``)."""
        if self._logger is None:
            job = self._job
            self._logger = job._base_logger.bind(job_id=job.id, job_name=job.name)
        return self._logger

    def _check_current(self) -> Reporter:
        job = self._job
        if job._live_run != self._run_no:
            msg = f"cannot report on job {job.name!r} ({job.id}): the run this context belongs to has ended"
            raise JobStateError(msg, job_id=job.id)
        return job

    def set_progress(self, value: float, message: str | None = None) -> None:
        """Report progress.

        Args:
            value: A finite number in ``[0, 1]``.
            message: A short text for people (``None`` keeps the previous message);
                at most 4096 characters, without NUL characters or lone surrogates.

        Raises:
            TypeError: *value* is not a real number (``bool`` is refused) or *message*
                is not a string.
            ValueError: *value* is NaN, infinite, or outside ``[0, 1]``; *message* is
                too long or not storable text.
            JobStateError: The run this context belongs to has ended.
            RuntimeError: Called from a thread that is neither the event loop's nor
                an anyio worker thread.

        A refused value changes nothing: the job carries on as before.
        """
        progress = check_progress(value)
        if message is not None:
            message = check_message(message)
        if get_ident() == self._thread:
            self._check_current()._report(progress, message)
        else:
            self._in_loop(self._report_now, progress, message)

    def set_result(self, value: Any) -> None:
        """Set the job's result now; it is visible as ``job.result`` while the job runs.

        A non-``None`` return value of the function replaces it.

        Raises:
            JobStateError: The run this context belongs to has ended.
            RuntimeError: Called from a thread that is neither the event loop's nor
                an anyio worker thread.
        """
        if get_ident() == self._thread:
            self._check_current()._result = value
        else:
            self._in_loop(self._set_result_now, value)

    def _report_now(self, progress: float, message: str | None) -> None:
        self._check_current()._report(progress, message)

    def _set_result_now(self, value: Any) -> None:
        self._check_current()._result = value

    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Call *fn* in the event loop thread from a worker thread, and wait for it."""
        try:
            anyio.from_thread.run_sync(fn, *args)
        except JobStateError:
            raise
        except RuntimeError as exc:  # not an anyio worker thread, or the loop has finished
            job = self._job
            msg = (
                f"cannot report on job {job.name!r} ({job.id}) from this thread ({exc}); report from "
                "the event loop, or from a worker thread started with anyio.to_thread.run_sync"
            )
            raise RuntimeError(msg) from None
