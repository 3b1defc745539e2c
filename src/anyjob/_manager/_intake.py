"""Intake: the records a ``submit`` or ``submit_many`` makes of its arguments, every one validated."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anyio

from anyjob._exceptions import JobError
from anyjob._ids import new_id
from anyjob._limits import check_labels, check_name, check_new_id, check_priority, check_start
from anyjob._manager._entry import Entry
from anyjob._manager._sink import Sink
from anyjob._manager._specs import Spec, SpecRegistry
from anyjob._records import JobRecord, JobRef, check_json_safe, now_timestamp
from anyjob._retry import Retry, as_retry
from anyjob._state import State
from anyjob._time import to_seconds

__all__ = ["MAX_BATCH", "id_in_use", "new_record", "new_records", "queue", "spec_for"]

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


#: At most this many jobs per ``submit_many`` call (a ValueError above): one call is one
#: transaction over a durable store, all of it stored or none, so it is not split.
MAX_BATCH: Final = 10_000


def spec_for(
    registry: SpecRegistry, fn: object, retry: Retry | int | None, timeout: float | timedelta | None
) -> Spec:
    """The spec ``submit`` (and every job of a ``submit_many``) runs with.

    Raises:
        TypeError, ValueError: An invalid *fn*, *retry* or *timeout*.
    """
    if retry is None and timeout is None:
        return registry.for_submit(fn, None, None)
    seconds = None if timeout is None else to_seconds(timeout, "timeout", allow_inf=True)
    return registry.for_submit(fn, as_retry(retry), seconds)


def new_records(
    registry: SpecRegistry,
    spec: Spec,
    params: Iterable[Any],
    *,
    origin: str,
    name: str | None,
    labels: Mapping[str, str] | None,
    priority: int,
    delay: float | timedelta | None,
    at: datetime | None,
) -> tuple[list[JobRecord], float]:
    """The new CREATED records, one per item of *params* in order, and the seconds until they may start.

    The arguments shared by every job are checked once, as ``submit`` checks them; each
    item is copied as ``submit``'s ``params`` is (a bad one is named by its index). The
    records share their creation and start times, and their new ids increase in order,
    so they wait in the order given (FIFO within their priority).

    Raises:
        TypeError: *params* is not an iterable of params (a ``str``, ``bytes`` or mapping
            is refused: it would be taken apart), or an item is not JSON-safe.
        ValueError: An invalid argument or item, or more than :data:`MAX_BATCH` items.
    """
    kind = type(params).__name__
    if isinstance(params, str | bytes | bytearray | Mapping) or not isinstance(params, Iterable):
        msg = f"params must be an iterable of each job's params (a list, say), not {kind}"
        raise TypeError(msg)
    first, wait = new_record(
        registry,
        spec,
        None,
        origin=origin,
        name=name,
        labels=labels,
        job_id=None,
        priority=priority,
        delay=delay,
        at=at,
    )
    records: list[JobRecord] = []
    append = records.append
    job_name, job_labels, job_priority = first.name, first.labels, first.priority
    created, scheduled, function = first.created, first.scheduled, first.function
    for index, item in enumerate(params):
        if index == MAX_BATCH:
            msg = f"submit_many takes at most {MAX_BATCH} jobs per call: submit the rest in another call"
            raise ValueError(msg)
        copied = check_json_safe(item, f"params[{index}]")
        append(
            JobRecord(
                new_id(),
                job_name,
                _CREATED,
                job_labels,
                copied,
                job_priority,
                created,
                scheduled,
                origin,
                function,
            )
        )
    return records, wait


def queue(
    entries: list[Entry],
    wait: float,
    push: Callable[[Entry], None],
    push_later: Callable[[Entry, float], None],
) -> list[JobRef]:
    """Queue a stored batch's *entries* in order (after *wait* seconds, if any); their refs."""
    if not entries:
        return []
    if wait > 0.0:
        due = anyio.current_time() + wait
        for entry in entries:
            push_later(entry, due)
    else:
        for entry in entries:
            push(entry)
    scheduled = datetime.fromtimestamp(entries[0].record.scheduled, UTC)
    return [JobRef(entry.record.id, entry.record.name, scheduled) for entry in entries]
