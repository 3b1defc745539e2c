"""Intake: the record a ``submit`` makes of its arguments, every one validated."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from anyjob._exceptions import JobError
from anyjob._ids import new_id
from anyjob._limits import check_labels, check_name, check_new_id, check_priority, check_start
from anyjob._manager._sink import Sink
from anyjob._manager._specs import Spec, SpecRegistry
from anyjob._records import JobRecord, check_json_safe, now_timestamp
from anyjob._state import State

__all__ = ["id_in_use", "new_record"]

_CREATED: Final = State.CREATED
_NO_LABELS: Final = check_labels(None)


def id_in_use(job_id: str, live: Mapping[str, object], sink: Sink) -> JobError | None:
    """The error for a new job with *job_id* when a live job here has it or one is being written.

    Refused before the store: a cancelled insert withdraws what it may have written, and
    must not withdraw the job that has the id.
    """
    if job_id in live or sink.busy(job_id):
        return JobError(f"a job with id {job_id!r} already exists", job_id=job_id)
    return None


def new_record(
    registry: SpecRegistry,
    spec: Spec,
    params: Any,
    *,
    origin: str,
    name: str | None,
    labels: Mapping[str, str] | None,
    job_id: str | None,
    priority: int,
    delay: float | timedelta | None,
    at: datetime | None,
) -> tuple[JobRecord, float]:
    """The new CREATED record, and how many seconds from now it may start (0.0: at once).

    Raises:
        TypeError, ValueError: An invalid argument (see ``docs/limits.md``).
    """
    name = spec.default_name if name is None else check_name(name)
    if type(priority) is not int or priority:
        priority = check_priority(priority)
    now = now_timestamp()
    wait = 0.0 if delay is None and at is None else check_start(delay, at, now)
    scheduled = now + wait if wait else now  # one float object when equal: 24 B per record
    record = JobRecord(
        new_id() if job_id is None else check_new_id(job_id),
        name,
        _CREATED,
        _NO_LABELS if labels is None else registry.labels(labels),
        check_json_safe(params, "params"),
        priority,
        now,
        scheduled,
        origin,
        spec.key,
    )
    return record, wait
