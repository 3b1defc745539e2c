"""The values a JobManager hands out, and the plain-data record stores keep."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, final

import attrs

from anyjob._state import State

__all__ = [
    "JobEvent",
    "JobInfo",
    "JobRecord",
    "JobRef",
    "JobStatistics",
    "check_json_safe",
    "from_timestamp",
    "now_timestamp",
]


def now_timestamp() -> float:
    """The current POSIX time, rounded to whole microseconds.

    Records keep timestamps at the resolution of ``datetime``, so a datetime
    made from a record compares exactly with the record's own timestamp.
    """
    return time.time_ns() // 1000 / 1e6  # 5x cheaper than round(time.time(), 6)


def from_timestamp(value: float | None) -> datetime | None:
    """A POSIX timestamp as an aware UTC datetime (``None`` stays ``None``)."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


_SCALARS = (str, int, float, bool, type(None))
_SEQUENCES = (list, tuple)


def check_json_safe(value: object, what: str) -> Any:
    """Validate that *value* is plain JSON data and return a copy of it.

    Allowed: ``None``, ``bool``, ``int``, finite ``float``, ``str``, lists and
    tuples (copied as lists) and dicts with ``str`` keys, nested. The copy means
    a caller mutating its object later cannot change what was recorded.

    Raises:
        TypeError: Something else is found (its path is named in the message).
        ValueError: A float is NaN or infinite.
    """
    cls: type[object] = type(value)
    if value is None or cls is str or cls is int or cls is bool:
        return value
    return _copy_json(value, what)


def _copy_json(value: Any, path: str) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"{path} must be JSON-safe, but holds the non-finite float {value!r}"
            raise ValueError(msg)
        return value
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, _SEQUENCES):
        items: list[Any] | tuple[Any, ...] = value  # pyright: ignore[reportUnknownVariableType]
        return [_copy_json(item, f"{path}[{index}]") for index, item in enumerate(items)]
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        mapping: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        for key, item in mapping.items():
            if not isinstance(key, str):
                msg = f"{path} must be JSON-safe, but has the non-string key {key!r}"
                raise TypeError(msg)
            copied[key] = _copy_json(item, f"{path}[{key!r}]")
        return copied
    msg = (
        f"{path} must be JSON-safe (None, bool, int, float, str, list, dict with str keys), "
        f"but holds a {type(value).__qualname__}"
    )
    raise TypeError(msg)


@final
@attrs.frozen
class JobRef:
    """What :meth:`JobManager.submit <anyjob.JobManager.submit>` returns.

    Attributes:
        id: The job's id.
        name: The job's name.
        scheduled_at: When the job may start at the earliest (UTC): the submission
            time, or the time ``delay``/``at`` asked for.
    """

    id: str
    name: str
    scheduled_at: datetime


@final
@attrs.frozen
class JobEvent:
    """A state change or a progress report of one job, from ``JobManager.events()``.

    Attributes:
        job_id: The job's id.
        state: The job's state after the change.
        progress: The job's progress in ``[0, 1]``.
        message: The job's latest progress message, or ``None``.
        at: When the change happened (UTC).
    """

    job_id: str
    state: State
    progress: float
    message: str | None
    at: datetime


@final
@attrs.frozen(slots=False)  # built per get()/wait(): a dict-backed frozen init is 2x faster than slots'
class JobInfo:
    """A snapshot of one job as a manager records it; :meth:`to_dict` gives JSON-safe values.

    Attributes:
        id: The job's id.
        name: The job's (or its registered function's) name.
        state: Its state.
        progress: Progress in ``[0, 1]``.
        message: The latest progress message, or ``None``.
        labels: ``str -> str`` pairs.
        params: The JSON-safe params it was submitted with.
        result: The JSON-safe result of its latest run, or ``None``.
        error: The message of the latest run's error, or ``None``.
        error_type: The error's qualified type name (``"TimeoutError"``), or ``None``.
        priority: Higher starts first among waiting jobs.
        attempts: How many tries it has had (each Executor attempt and each ``retry`` counts).
        created_at: When it was submitted (UTC).
        scheduled_at: When it may start at the earliest (UTC).
        started_at: When its latest run started, or ``None``.
        ended_at: When its latest run ended, or ``None``.
        duration: Seconds from ``started_at`` to ``ended_at``, or ``None`` until it ended.
    """

    id: str
    name: str
    state: State
    progress: float
    message: str | None
    labels: Mapping[str, str]
    params: Any
    result: Any
    error: str | None
    error_type: str | None
    priority: int
    attempts: int
    created_at: datetime
    scheduled_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None

    def to_dict(self) -> dict[str, Any]:
        """The info as JSON-safe values: the state as its value, datetimes as ISO 8601 strings."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            "progress": self.progress,
            "message": self.message,
            "labels": dict(self.labels),
            "params": self.params,
            "result": self.result,
            "error": self.error,
            "error_type": self.error_type,
            "priority": self.priority,
            "attempts": self.attempts,
            "created_at": _iso(self.created_at),
            "scheduled_at": _iso(self.scheduled_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration": self.duration,
        }


@final
@attrs.frozen
class JobStatistics:
    """Counts over the jobs a manager (or its store) knows.

    Attributes:
        total: Every job counted.
        by_state: Jobs per state; every :class:`~anyjob.State` is present.
        by_name: Jobs per name.
        active: Jobs created or executing (not done).
        success_rate: Succeeded / finished, 0.0 when none finished.
        average_duration: Mean seconds from start to end of finished jobs (0.0 when none).
    """

    total: int
    by_state: Mapping[State, int]
    by_name: Mapping[str, int]
    active: int
    success_rate: float
    average_duration: float


@final
@attrs.define(eq=False)
class JobRecord:
    """The plain-data record a store keeps for one job (timestamps as POSIX seconds).

    A store takes ownership of the record given to ``insert``; it hands out
    :class:`JobInfo` snapshots and record copies, never its own records.
    ``owner`` is the id of the manager that runs the job; ``function`` names the
    function to run (a registered name, or a key only its owner knows).
    """

    id: str
    name: str
    state: State
    labels: Mapping[str, str]
    params: Any
    priority: int
    created: float
    scheduled: float
    owner: str
    function: str = ""
    progress: float = 0.0
    message: str | None = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    cancel_requested: bool = False

    def info(self) -> JobInfo:
        """A frozen snapshot of this record."""
        started = self.started
        ended = self.ended
        created_at = datetime.fromtimestamp(self.created, UTC)
        scheduled = self.scheduled
        # Positional (JobInfo's field order), and one datetime when created == scheduled:
        # wait() and get() hand these out per call.
        return JobInfo(
            self.id,
            self.name,
            self.state,
            self.progress,
            self.message,
            self.labels,
            self.params,
            self.result,
            self.error,
            self.error_type,
            self.priority,
            self.attempts,
            created_at,
            created_at if scheduled == self.created else datetime.fromtimestamp(scheduled, UTC),
            None if started is None else datetime.fromtimestamp(started, UTC),
            None if ended is None else datetime.fromtimestamp(ended, UTC),
            None if started is None or ended is None else max(ended - started, 0.0),
        )
