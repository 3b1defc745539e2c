"""Job records as SQL rows and back, queries as WHERE clauses, counts over them (for the SQL stores)."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import attrs

from anyjob._exceptions import StoreError
from anyjob._records import JobRecord, JobStatistics
from anyjob._state import State
from anyjob.stores._base import RecordUpdate, clamp_timestamp
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


def _json(value: Any) -> str:
    return "null" if value is None else dumps(value)  # most params and results are None


def _labels(value: Mapping[str, str]) -> str:
    return dumps(dict(value)) if value else "{}"


def _state_value(value: State) -> str:
    text: str = value.value
    return text


#: How a field's value becomes its column's (the others are stored as they are).
_CONVERT: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {"labels": _labels, "params": _json, "result": _json, "state": _state_value, "cancel_requested": int}
)
_ROW_CONVERTERS: Final = tuple(_CONVERT.get(name) for name in FIELDS)
_ROW_VALUES: Final = operator.attrgetter(*FIELDS)


def to_row(record: JobRecord) -> tuple[Any, ...]:
    """The column values of *record*, in the order of :data:`FIELDS`."""
    return tuple(
        value if convert is None else convert(value)
        for convert, value in zip(_ROW_CONVERTERS, _ROW_VALUES(record), strict=True)
    )


def column(name: str, value: Any) -> Any:
    """The column value of one record field."""
    convert = _CONVERT.get(name)
    return value if convert is None else convert(value)


#: Ends a stored cancel request overrides (see Store.apply).
OVERRIDDEN_ENDS: Final = frozenset({State.SUCCEEDED, State.FAILED})
#: The UPDATE statements built so far, by the shape of their updates (a few kinds of
#: update repeat: claims, ends, reports); at most _STATEMENTS_KEPT of them.
_STATEMENTS: dict[tuple[tuple[str, ...], bool, int | None, bool], str] = {}
_STATEMENTS_KEPT: Final = 256


def update_statement(update: RecordUpdate) -> tuple[str, list[Any]]:
    """The UPDATE for *update* (at least one field) and its parameters.

    Its rowcount is 1 if it applied. A SUCCEEDED or FAILED state is written CANCELED
    when the row (before the update) holds a cancel request.
    """
    fields = update.fields
    expect = update.expect
    overridden = fields.get("state") in OVERRIDDEN_ENDS
    shape = (tuple(fields), overridden, None if expect is None else len(expect), update.owner is not None)
    sql = _STATEMENTS.get(shape)
    if sql is None:
        sql = _update_sql(*shape)
        if len(_STATEMENTS) < _STATEMENTS_KEPT:
            _STATEMENTS[shape] = sql
    params: list[Any] = []
    for name, value in fields.items():
        if overridden and name == "state":
            params.extend((State.CANCELED.value, value.value))
        else:
            params.append(column(name, value))
    params.append(update.job_id)
    if expect is not None:
        params.extend(state.value for state in expect)
    if update.owner is not None:
        params.append(update.owner)
    return sql, params


def statement_runs(
    updates: Sequence[RecordUpdate],
) -> list[RecordUpdate | tuple[str, list[tuple[RecordUpdate, list[Any]]]]]:
    """*updates* in order, as runs of one UPDATE statement each (with each one's parameters).

    Alone, not in a run: an update that needs more than one statement (labels) or none
    (no fields).
    """
    runs: list[RecordUpdate | tuple[str, list[tuple[RecordUpdate, list[Any]]]]] = []
    for update in updates:
        if not update.fields or "labels" in update.fields:
            runs.append(update)
            continue
        sql, params = update_statement(update)
        last = runs[-1] if runs else None
        if isinstance(last, tuple) and last[0] == sql:
            last[1].append((update, params))
        else:
            runs.append((sql, [(update, params)]))
    return runs


def _update_sql(names: tuple[str, ...], overridden: bool, expected: int | None, owned: bool) -> str:  # noqa: FBT001 - a shape
    assignments = [
        # The stored cancel_requested (the row before this update) wins.
        "state = CASE WHEN cancel_requested <> 0 THEN ? ELSE ? END"
        if overridden and name == "state"
        else f"{name} = ?"
        for name in names
    ]
    sql = f"UPDATE anyjob_jobs SET {', '.join(assignments)} WHERE id = ?"  # noqa: S608 - checked names
    if expected is not None:
        sql += f" AND state IN ({','.join('?' * expected)})"
    if owned:
        sql += " AND owner = ?"
    return sql


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
