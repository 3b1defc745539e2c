"""The errors anyjob raises.

::

    JobError(Exception)
    ├── JobStateError(JobError, RuntimeError)     operation not allowed in the job's current state
    ├── JobCanceledError(JobError)                the job was canceled
    ├── CooldownError(JobError)                   .remaining: float seconds
    ├── AlreadySucceededError(JobError)           once-only executor already succeeded
    ├── JobNotFoundError(JobError, LookupError)   no job with that id
    ├── JobLostError(JobError)                    the job's runner stopped reporting
    ├── ManagerClosedError(JobError, RuntimeError) the JobManager is not open
    └── StoreError(JobError)                      the store is unreachable or refused; cause chained

Every error carries ``.job_id`` (``None`` where no single job is concerned).
Cancellation is never wrapped or converted into one of these.
"""

from __future__ import annotations

__all__ = [
    "AlreadySucceededError",
    "CooldownError",
    "JobCanceledError",
    "JobError",
    "JobLostError",
    "JobNotFoundError",
    "JobStateError",
    "ManagerClosedError",
    "StoreError",
]


class JobError(Exception):
    """Base class of every error anyjob raises.

    Attributes:
        job_id: The id of the job concerned, or ``None``.
    """

    job_id: str | None

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobStateError(JobError, RuntimeError):
    """The operation is not allowed in the job's current state (for example running a running job)."""


class JobCanceledError(JobError):
    """The job was canceled (by ``Executor.stop()``, ``Job.cancel()`` or a manager)."""


class CooldownError(JobError):
    """An executor was started again before its cooldown ended.

    Attributes:
        remaining: Seconds left until the executor may start again (> 0).
    """

    remaining: float

    def __init__(self, message: str, *, remaining: float, job_id: str | None = None) -> None:
        super().__init__(message, job_id=job_id)
        self.remaining = remaining


class AlreadySucceededError(JobError):
    """A once-only executor already succeeded and cannot start again until ``reset()``."""


class JobNotFoundError(JobError, LookupError):
    """No job with that id is known."""


class JobLostError(JobError):
    """The job's runner stopped reporting: a lost manager, or an external job silent past ``stale_after``."""


class ManagerClosedError(JobError, RuntimeError):
    """The :class:`~anyjob.JobManager` is not open: not entered yet, or closed."""


class StoreError(JobError):
    """The store is unreachable or refused an operation; the driver's exception is its ``__cause__``."""
