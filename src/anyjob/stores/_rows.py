"""Job records as SQL rows and back, queries as WHERE clauses, counts over them (for the SQL stores)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from anyjob._exceptions import StoreError
from anyjob._records import JobRecord, JobStatistics
from anyjob._state import State
from anyjob.stores._base import clamp_timestamp
from anyjob.stores._connection import Connection

__all__: list[str] = []

STATE_BY_VALUE: Final = {state.value: state for state in State}
DONE: Final = (State.SUCCEEDED.value, State.FAILED.value, State.CANCELED.value)
_ACTIVE: Final = (State.CREATED, State.RUNNING, State.CANCELING)
FIELDS: Final = tuple(field.name for field in attrs.fields(JobRecord))
_JSON_FIELDS: Final = frozenset({"labels", "params", "result"})
_TIME_FIELDS: Final = frozenset({"created", "scheduled", "started", "ended", "updated"})
_FLOAT_FIELDS: Final = _TIME_FIELDS | {"stale_after"}
#: The fields schema version 3 added: a row an older anyjob logged (a deletion's final info)
#: may lack them, and reads as ``None`` for them.
ADDED_FIELDS: Final = ("updated", "traceback", "stale_after")


def dumps(value: Any) -> str:
    """Compact JSON, refusing NaN and infinities."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def to_row(record: JobRecord) -> tuple[Any, ...]:
    """The column values of *record*, in the order of :data:`FIELDS`."""
    return tuple(column(name, getattr(record, name)) for name in FIELDS)


def column(name: str, value: Any) -> Any:
    """The column value of one record field."""
    if name in _JSON_FIELDS:
        return dumps(dict(value) if name == "labels" else value)
    if name == "state":
        return value.value
    if name == "cancel_requested":
        return int(value)
    return value


def _value(name: str, stored: Any) -> Any:
    """The inverse of :func:`column` (times out of a datetime's range clamped to it)."""
    if name in _JSON_FIELDS:
        value: Any = json.loads(stored)
        if name == "labels":
            if not isinstance(value, dict):
                msg = f"labels are a {type(value).__name__}, not an object"
                raise TypeError(msg)
            labels: dict[str, str] = value  # pyright: ignore[reportUnknownVariableType]
            return MappingProxyType(labels)
        return value
    if name == "state":
        return STATE_BY_VALUE[stored]
    if name == "cancel_requested":
        return bool(stored)
    if stored is not None and name in _FLOAT_FIELDS:
        number = float(stored)
        return clamp_timestamp(number) if name in _TIME_FIELDS else number
    return stored


def from_row(row: Any) -> JobRecord:
    """The record a row holds.

    Raises:
        StoreError: The row cannot be decoded (its ``job_id`` is set; the cause chained).
    """
    try:
        return JobRecord(**{name: _value(name, row[name]) for name in FIELDS})
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        job_id = str(row["id"])
        msg = f"cannot decode the stored record of job {job_id!r}: {exc!r}"
        raise StoreError(msg, job_id=job_id) from exc


def filters(
    *,
    states: frozenset[State] | None = None,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause (possibly empty) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if states is not None:
        if not states:
            return " WHERE 1 = 0", []
        clauses.append(f"state IN ({','.join('?' * len(states))})")
        params.extend(state.value for state in states)
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    # Compared in whole microseconds, as JobQuery.matches does.
    if created_after is not None:
        clauses.append("CAST(round(created * 1000000) AS BIGINT) > ?")
        params.append(round(created_after * 1_000_000))
    if created_before is not None:
        clauses.append("CAST(round(created * 1000000) AS BIGINT) < ?")
        params.append(round(created_before * 1_000_000))
    for key, value in (labels or {}).items():
        clauses.append(
            "EXISTS (SELECT 1 FROM anyjob_labels l"
            " WHERE l.job_id = anyjob_jobs.id AND l.key = ? AND l.value = ?)"
        )
        params.extend((key, value))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def count(conn: Connection, name: str | None, labels: Mapping[str, str] | None) -> JobStatistics:
    """Counts over the matching rows (in states this anyjob knows)."""
    where, params = filters(name=name, labels=labels)
    done = ",".join("?" * len(DONE))
    rows = conn.execute(
        f"SELECT state, COUNT(*) AS n, "  # noqa: S608 - built from constants
        f"SUM(CASE WHEN state IN ({done}) AND started IS NOT NULL AND ended IS NOT NULL "
        f"THEN {conn.greatest}(ended - started, 0) END) AS duration_sum, "
        f"COUNT(CASE WHEN state IN ({done}) AND started IS NOT NULL AND ended IS NOT NULL "
        f"THEN 1 END) AS duration_count "
        f"FROM anyjob_jobs{where} GROUP BY state",
        [*DONE, *DONE, *params],
    ).fetchall()
    by_state = dict.fromkeys(State, 0)
    duration_sum = 0.0
    duration_count = 0
    for row in rows:
        state = STATE_BY_VALUE.get(row["state"])
        if state is None:  # written by a newer anyjob: not counted
            continue
        by_state[state] = row["n"]
        duration_sum += row["duration_sum"] or 0.0
        duration_count += row["duration_count"]
    by_name = {
        row["name"]: row["n"]
        for row in conn.execute(
            f"SELECT name, COUNT(*) AS n FROM anyjob_jobs{where} GROUP BY name",  # noqa: S608 - built from constants
            params,
        )
    }
    succeeded = by_state[State.SUCCEEDED]
    finished = succeeded + by_state[State.FAILED] + by_state[State.CANCELED]
    return JobStatistics(
        total=sum(by_state.values()),
        by_state=by_state,
        by_name=by_name,
        active=sum(by_state[state] for state in _ACTIVE),
        success_rate=succeeded / finished if finished else 0.0,
        average_duration=duration_sum / duration_count if duration_count else 0.0,
    )
