"""Entry: one job a manager owns and has not finished, and the worker that may run it."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import structlog

from anyjob._executor import Executor
from anyjob._job import Job
from anyjob._records import JobRecord
from anyjob._state import State

if TYPE_CHECKING:
    from anyjob._manager._recorder import Recorder
    from anyjob._manager._specs import Spec

__all__ = ["Entry", "Worker"]

_logger: Final = structlog.get_logger("anyjob")


@final
class Worker:
    """One worker task: the cancel scope the jobs it runs in place execute in.

    Canceling such a job cancels this scope; the worker then leaves it and opens a
    new one. A scope per worker instead of one per job is most of what makes a
    tracked job cheaper than a bare task.
    """

    __slots__ = ("context", "scope", "spec")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.context: contextvars.Context | None = None  # its context variables before the first job
        self.spec: Spec | None = None  # of the job it runs or ran last


@final
class Entry:
    """A job this manager owns and has not finished: waiting, scheduled or executing.

    Its record holds the job's data; only the :class:`~anyjob._manager._recorder.Recorder`
    writes it. With a MemoryStore the record is the very object the store keeps; with
    other stores it is a local copy the sink writes to the store in batches.

    A job without retry or timeout runs right in a worker, with no
    :class:`~anyjob.Job` around it: the entry is then what its
    :class:`~anyjob.Context` reports to (see :class:`~anyjob._job.Reporter`).
    """

    __slots__ = (
        "_live_run",
        "_result",
        "attempts_before",
        "cancel_requested",
        "due",
        "executor",
        "flushed_state",
        "job",
        "job_state",
        "record",
        "recorder",
        "spec",
        "worker",
    )

    _base_logger: Any = _logger

    def __init__(self, recorder: Recorder, record: JobRecord, spec: Spec) -> None:
        self.recorder = recorder
        self.record = record
        self.spec = spec
        #: The state the store has indexed for it (the sink's to keep).
        self.flushed_state = record.state
        self.job: Job[Any] | None = None  # running through an Executor
        self.executor: Executor[Any] | None = None
        self.job_state = State.CREATED  # the Job's state as last seen (Executor runs)
        self.attempts_before = record.attempts  # tries of earlier runs (retry): an Executor counts on
        self.worker: Worker | None = None  # running it in place, without a Job
        self.due: float | None = None  # in the delayed queue until then
        self.cancel_requested = False
        self._live_run = 0
        self._result: Any = None

    def __repr__(self) -> str:
        return f"<Entry {self.record.id} {self.record.state.value}>"

    def stop(self) -> None:
        """Cancel the run in progress, however it runs (in place, through an Executor)."""
        worker = self.worker
        if worker is not None:
            if worker.scope is not None:
                worker.scope.cancel()
        elif self.executor is not None:
            self.executor.request_stop()  # also between two attempts, while it waits
        elif self.job is not None:
            self.job.cancel()

    # -- what a Context needs (jobs run in place) ------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.record.labels

    @property
    def params(self) -> Any:
        return self.record.params

    def _report(self, progress: float, message: str | None) -> None:
        self.recorder.progress(self, progress, message)
