"""The values a JobManager hands out, and the plain-data record stores keep."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast, final

import attrs

from anyjob._limits import MAX_JSON_DEPTH, MAX_JSON_INT, MIN_JSON_INT, text_problem
from anyjob._state import State
from anyjob._time import short_repr

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
    """A POSIX timestamp as an aware UTC datetime (``None`` stays ``None``); it never raises.

    A value outside ``datetime``'s range (a bad or very old row) is clamped to
    ``datetime.min``/``datetime.max`` in UTC, and NaN gives ``datetime.min``, so one
    bad record cannot make a whole listing fail.
    """
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        return _clamped_datetime(value)


_MIN_DATETIME = datetime.min.replace(tzinfo=UTC)
_MAX_DATETIME = datetime.max.replace(tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _clamped_datetime(value: float) -> datetime:
    """The rare path of :func:`from_timestamp`: *value* as near as ``datetime`` can show it."""
    try:
        seconds = float(value)
    except (OverflowError, ValueError, TypeError):
        return _MIN_DATETIME
    if math.isnan(seconds) or seconds <= (_MIN_DATETIME - _EPOCH).total_seconds():
        return _MIN_DATETIME
    if seconds >= (_MAX_DATETIME - _EPOCH).total_seconds():
        return _MAX_DATETIME
    return _EPOCH + timedelta(seconds=seconds)  # in range, where the platform's own call refused


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def check_json_safe(value: object, what: str) -> Any:
    """Validate that *value* is plain JSON data every store can keep, and return a copy of it.

    Allowed: ``None``, ``bool``, ``int`` within the signed 64-bit range, finite ``float``,
    ``str``, lists and tuples (copied as lists) and dicts with ``str`` keys, nested at
    most ``MAX_JSON_DEPTH`` (64) deep (``[]`` is depth 1). Strings and keys must be text:
    no NUL character, no lone surrogate. The copy means a caller mutating its object later
    cannot change what was recorded; subclasses of the scalar types are copied as the
    plain type. A cyclic value exceeds the depth (``ValueError``, never ``RecursionError``).

    Raises:
        TypeError: Something else is found (its path is named in the message).
        ValueError: A float is NaN or infinite, an int is outside the 64-bit range, a
            string or key is not text, or the nesting is too deep.
    """
    cls: type[object] = type(value)
    if value is None or cls is bool:
        return value
    if cls is str:
        if value.isascii() and "\x00" not in value:  # type: ignore[attr-defined, operator]
            return value
    elif cls is int and -0x8000_0000_0000_0000 <= value <= 0x7FFF_FFFF_FFFF_FFFF:  # type: ignore[operator] # noqa: PLR2004
        return value  # the literals are MIN_JSON_INT and MAX_JSON_INT (a global lookup costs 20 %)
    try:
        return _copy(value, 0)
    except _Refused as refused:
        path = what + "".join(reversed(refused.path))
        if len(path) > 200:  # noqa: PLR2004 - 900 levels of "[0]" say nothing more than 40
            path = f"{path[:120]}...{path[-60:]}"
        msg = f"{path} must be JSON-safe, but {refused.problem}"
        raise refused.error_type(msg) from None


class _Refused(Exception):  # noqa: N818 - internal, never seen outside this module
    """What :func:`_copy` found wrong; each container on the way out adds its step to *path*."""

    def __init__(self, error_type: type[TypeError | ValueError], problem: str) -> None:
        super().__init__(problem)
        self.error_type = error_type
        self.problem = problem
        self.path: list[str] = []


def _copy(value: Any, depth: int) -> Any:  # noqa: PLR0911 - one branch per JSON type, exact types first
    """The copy of JSON *value* nested in *depth* containers; paths are built only on failure."""
    cls: type[object] = type(cast("object", value))
    if cls is str:
        if value.isascii() and "\x00" not in value:
            return value
        return _text(value)
    if cls is int:
        if -0x8000_0000_0000_0000 <= value <= 0x7FFF_FFFF_FFFF_FFFF:  # noqa: PLR2004 - MIN_JSON_INT..MAX_JSON_INT, inline
            return value
        raise _Refused(ValueError, _int_problem(value))
    if cls is float:
        if value - value == 0.0:  # finite: inf - inf and nan - nan are nan
            return value
        raise _Refused(ValueError, f"holds the non-finite float {value!r}")
    if value is None or cls is bool:
        return value
    if cls is dict or cls is list or cls is tuple:
        return _copy_container(value, depth)
    return _copy_subclass(value, depth)


def _copy_container(value: Any, depth: int) -> Any:
    if depth >= MAX_JSON_DEPTH:
        msg = f"is nested more than {MAX_JSON_DEPTH} deep (or holds itself)"
        raise _Refused(ValueError, msg)
    depth += 1
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        mapping: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        for key, item in mapping.items():
            if type(key) is not str or not key.isascii() or "\x00" in key:
                key = _key(key)  # noqa: PLW2901 - the checked plain str replaces it
            try:
                copied[key] = _copy(item, depth)
            except _Refused as refused:
                refused.path.append(f"[{short_repr(key, 40)}]")
                raise
        return copied
    items: list[Any] | tuple[Any, ...] = value  # pyright: ignore[reportUnknownVariableType]
    copied_items: list[Any] = []
    append = copied_items.append
    index = 0
    try:
        for index, item in enumerate(items):  # noqa: B007 - the failing index names the path
            append(_copy(item, depth))
    except _Refused as refused:
        refused.path.append(f"[{index}]")
        raise
    return copied_items


def _copy_subclass(value: object, depth: int) -> Any:
    """The rare types: subclasses of the JSON ones (copied as the plain type), or refused."""
    if isinstance(value, str):
        return _text(str.__str__(value))
    if isinstance(value, int):  # bool cannot be subclassed, so no bool comes here
        return _copy(int.__int__(value), depth)
    if isinstance(value, float):
        return _copy(float.__float__(value), depth)
    if isinstance(value, dict):
        return _copy_container(value, depth)
    if isinstance(value, list | tuple):
        return _copy_container(value, depth)
    msg = (
        "is not JSON data (None, bool, int, float, str, list, dict with str keys): "
        f"it holds a {type(value).__qualname__}"
    )
    raise _Refused(TypeError, msg)


def _text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise _Refused(ValueError, f"a string holds {problem}")
    return value


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise _Refused(TypeError, f"has the non-string key {short_repr(key)}")
    text = key if type(key) is str else str.__str__(key)
    problem = text_problem(text)
    if problem is not None:
        raise _Refused(ValueError, f"the key {short_repr(text, 40)} holds {problem}")
    return text


def _int_problem(value: int) -> str:
    return (
        f"holds the int {short_repr(value)}, outside the signed 64-bit range "
        f"({MIN_JSON_INT} to {MAX_JSON_INT})"
    )


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

    def to_dict(self) -> dict[str, Any]:
        """The ref as JSON-safe values (the datetime as an ISO 8601 string)."""
        return {"id": self.id, "name": self.name, "scheduled_at": _iso(self.scheduled_at)}


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

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-safe values: the state as its value, the time as ISO 8601."""
        return {
            "job_id": self.job_id,
            "state": self.state.value,
            "progress": self.progress,
            "message": self.message,
            "at": _iso(self.at),
        }


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
        updated_at: When the job last showed a sign of life (UTC): the latest of
            ``created_at``, ``started_at``, ``ended_at`` and its latest progress or message
            report.
        traceback: The formatted traceback of the latest run's error (bounded, storable
            text), or ``None``.
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
    updated_at: datetime
    traceback: str | None

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
            "updated_at": _iso(self.updated_at),
            "traceback": self.traceback,
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

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-safe values; ``by_state`` keyed by state value, every state present."""
        return {
            "total": self.total,
            "by_state": {state.value: count for state, count in self.by_state.items()},
            "by_name": dict(self.by_name),
            "active": self.active,
            "success_rate": self.success_rate,
            "average_duration": self.average_duration,
        }


@final
@attrs.define(eq=False)
class JobRecord:
    """The plain-data record a store keeps for one job (timestamps as POSIX seconds).

    A store takes ownership of the record given to ``insert``; it hands out
    :class:`JobInfo` snapshots and record copies, never its own records.

    Attributes:
        id: The job's id.
        name: The job's name.
        state: Its :class:`~anyjob.State`.
        labels: ``str -> str`` pairs to filter by.
        params: The JSON-safe params the job was submitted with.
        priority: Higher starts first among waiting jobs.
        created: When it was submitted.
        scheduled: When it may start at the earliest.
        owner: The id of the manager that runs the job.
        function: The function to run: a registered name, or a key only its owner knows.
        progress: The latest progress, in ``[0, 1]``.
        message: The latest progress message, or ``None``.
        result: The JSON-safe result of a SUCCEEDED job.
        error: The error's text for a FAILED job.
        error_type: The error's type name for a FAILED job.
        attempts: How many times it was started (retries and earlier runs included).
        started: When its latest run started, or ``None``.
        ended: When it ended, or ``None``.
        cancel_requested: A cancel was asked for (by any manager) and not yet carried out.
        updated: The time of the latest progress or message report (``None`` until one came).
        traceback: The formatted traceback of the latest run's error (see
            ``anyjob._error_text.traceback_text``).
        stale_after: The seconds a ``RUNNING`` or ``CANCELING`` record may go without a
            sign of life (its latest of ``updated``, ``started``, ``created``) before
            :meth:`Store.expire_stale <anyjob.stores.Store.expire_stale>` ends it as lost
            (``None``: never).
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
    updated: float | None = None
    traceback: str | None = None
    stale_after: float | None = None

    def info(self) -> JobInfo:
        """A frozen snapshot of this record; it never raises.

        A timestamp outside ``datetime``'s range (a bad stored row) is clamped as
        :func:`from_timestamp` does.
        """
        created = self.created
        scheduled = self.scheduled
        started = self.started
        ended = self.ended
        updated = self.updated
        try:
            created_at = datetime.fromtimestamp(created, UTC)
            # One datetime when created == scheduled: wait() and get() hand these out per call.
            scheduled_at = created_at if scheduled == created else datetime.fromtimestamp(scheduled, UTC)
            # updated_at reuses the latest of these; a new datetime only for a later report.
            latest = created
            updated_at = created_at
            if started is None:
                started_at = None
            else:
                started_at = datetime.fromtimestamp(started, UTC)
                if started > latest:
                    latest = started
                    updated_at = started_at
            if ended is None:
                ended_at = None
            else:
                ended_at = datetime.fromtimestamp(ended, UTC)
                if ended > latest:
                    latest = ended
                    updated_at = ended_at
            if updated is not None and updated > latest:
                updated_at = datetime.fromtimestamp(updated, UTC)
        except (OverflowError, ValueError, OSError):  # costs nothing until raised (3.11)
            # The rare path: every timestamp clamped, as from_timestamp() does.
            created_at = _clamped_datetime(created)
            scheduled_at = _clamped_datetime(scheduled)
            started_at = from_timestamp(started)
            ended_at = from_timestamp(ended)
            updated_at = max(
                time
                for time in (created_at, started_at, ended_at, from_timestamp(updated))
                if time is not None
            )
        # Positional, in JobInfo's field order (cheaper than keywords).
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
            scheduled_at,
            started_at,
            ended_at,
            None if started is None or ended is None else max(ended - started, 0.0),
            updated_at,
            self.traceback,
        )
