"""JobStats: the frozen snapshot :meth:`Job.stats <anyjob.Job.stats>` hands out, and how it is taken.

Re-exported by :mod:`anyjob._job` (where it used to live) and by :mod:`anyjob`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, final

import attrs

from anyjob._error_text import error_text
from anyjob._state import State

if TYPE_CHECKING:  # anyjob._job builds on this module
    from anyjob._job import Job

__all__ = ["JobStats", "job_stats"]


@final
@attrs.frozen
class JobStats:
    """A snapshot of one job.

    Attributes:
        id: The job's id.
        name: The job's name.
        state: Its state when the snapshot was taken.
        progress: Progress in ``[0, 1]``.
        message: The latest progress message, or ``None``.
        labels: The job's labels (read-only).
        created_at: When the job was made (UTC).
        started_at: When the latest run started, or ``None``.
        ended_at: When the latest run ended, or ``None``.
        execution_time: How long the latest run took (so far, while executing).
        error: The message of the latest run's error, or ``None``.
    """

    id: str
    name: str
    state: State
    progress: float
    message: str | None
    labels: Mapping[str, str]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    execution_time: timedelta
    error: str | None


def job_stats(job: Job[Any]) -> JobStats:
    """The snapshot of *job* now, read from its public attributes (what ``job.stats()`` returns)."""
    error = job.error
    return JobStats(
        id=job.id,
        name=job.name,
        state=job.state,
        progress=job.progress,
        message=job.message,
        labels=job.labels,
        created_at=job.created_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        execution_time=job.execution_time,
        error=None if error is None else error_text(error),
    )
