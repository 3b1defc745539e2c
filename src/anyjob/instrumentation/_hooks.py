"""The hook registry: every lifecycle event anyjob emits goes through here."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, final, runtime_checkable

import attrs
import structlog

if TYPE_CHECKING:
    from anyjob._state import State

__all__ = [
    "CANCELED_ELSEWHERE",
    "JOB_CANCELED",
    "JOB_FAILED",
    "JOB_STARTED",
    "JOB_SUCCEEDED",
    "RETRY_SCHEDULED",
    "SHUTDOWN_OVERDUE",
    "Hook",
    "HookEvent",
    "SelectiveHook",
    "StructlogHook",
    "get_hooks",
    "reset_hooks",
    "set_hooks",
]

JOB_STARTED: Final = "anyjob.job_started"
JOB_SUCCEEDED: Final = "anyjob.job_succeeded"
JOB_FAILED: Final = "anyjob.job_failed"
JOB_CANCELED: Final = "anyjob.job_canceled"
RETRY_SCHEDULED: Final = "anyjob.retry_scheduled"
#: A waiting job this manager held was canceled by another manager sharing the store (debug).
CANCELED_ELSEWHERE: Final = "anyjob.canceled_elsewhere"
#: A job still executing past twice ``shutdown_timeout`` while its manager closes (warning).
SHUTDOWN_OVERDUE: Final = "anyjob.shutdown_overdue"

logger = structlog.get_logger("anyjob")

_WARNING_EVENTS: Final = frozenset({JOB_FAILED, RETRY_SCHEDULED, SHUTDOWN_OVERDUE})


@final
@attrs.frozen
class HookEvent:
    """What a hook receives: one lifecycle event of one job.

    Attributes:
        name: The dotted event name: ``anyjob.job_started``, ``anyjob.job_succeeded``,
            ``anyjob.job_failed``, ``anyjob.job_canceled``, ``anyjob.retry_scheduled``,
            ``anyjob.canceled_elsewhere`` or ``anyjob.shutdown_overdue``.
        job_id: The job's id.
        job_name: The job's name.
        labels: The job's labels (read-only).
        state: The job's state when the event was emitted.
        error: The exception of a failed attempt or job (``job_failed``,
            ``retry_scheduled``; for ``job_canceled`` an exception the function raised
            while unwinding, if any).
        duration: Seconds the run took, for the three end events; for ``shutdown_overdue``,
            seconds the manager has been closing.
        attempt: For ``retry_scheduled``: the number of the attempt that just failed (1-based).
        wait: For ``retry_scheduled``: seconds until the next attempt starts.
    """

    name: str
    job_id: str
    job_name: str
    labels: Mapping[str, str]
    state: State
    error: BaseException | None = None
    duration: float | None = None
    attempt: int | None = None
    wait: float | None = None


@runtime_checkable
class Hook(Protocol):
    """Anything callable with a :class:`HookEvent`.

    Hooks run synchronously in the job's task: keep them quick and never block.
    An exception raised by a hook is logged (``anyjob.hook_failed``) and does not
    affect the job.
    """

    def __call__(self, event: HookEvent, /) -> None:
        """Receive one event."""


class SelectiveHook(Hook, Protocol):
    """A hook that can say, cheaply, which events it wants.

    ``wants(name)`` is asked before an event is built; when no active hook wants
    it, the event is never made. A hook without ``wants`` gets every event.
    """

    def wants(self, name: str, /) -> bool:
        """Whether this hook wants events named *name* right now."""
        ...


@final
@attrs.define(eq=False)
class StructlogHook:
    """The default hook: logs through ``structlog.get_logger("anyjob")``.

    Failures and scheduled retries are logged at warning level, the other state
    changes at debug level (only once the application configures structlog). The
    event name is the structlog event; the job's id and name, and where known the
    duration, attempt, wait and error, are fields.
    anyjob never configures structlog: filter these events in your own
    configuration, or silence them with ``set_hooks([])``.
    """

    _assembled: Any = attrs.field(default=None, init=False, repr=False)

    def wants(self, name: str) -> bool:
        """Whether structlog would log *name* at its level (warning or debug).

        While the application has not configured structlog at all, only the
        warning-level events: unconfigured structlog prints everything, and a
        library's debug events should not appear unasked (as with the standard
        library's logging, whose default level is WARNING).
        """
        warning = name in _WARNING_EVENTS
        if not warning and not structlog.is_configured():
            return False
        target = self._assembled
        if target is None:
            if "bind" in vars(logger):
                # structlog cached the assembled logger on first use (its
                # cache_logger_on_first_use): it will never change, so ask it
                # directly instead of through the lazy proxy (0.5 us a question).
                target = self._assembled = logger.bind()
            else:
                target = logger
        try:
            return bool(target.is_enabled_for(logging.WARNING if warning else logging.DEBUG))
        except AttributeError:  # a configured wrapper class without is_enabled_for
            return True

    def __call__(self, event: HookEvent) -> None:
        """Log *event*."""
        warn = event.name in _WARNING_EVENTS
        # Ask first: building the fields costs more than a filtered-out call.
        if not self.wants(event.name):
            return
        fields: dict[str, object] = {"job_id": event.job_id, "job_name": event.job_name}
        if event.duration is not None:
            fields["duration"] = round(event.duration, 6)
        if event.attempt is not None:
            fields["attempt"] = event.attempt
        if event.wait is not None:
            fields["wait"] = round(event.wait, 6)
        if event.error is not None:
            fields["error"] = f"{type(event.error).__qualname__}: {event.error}"
        if warn:
            logger.warning(event.name, **fields)
        else:
            logger.debug(event.name, **fields)


_DEFAULT: Final[tuple[Hook, ...]] = (StructlogHook(),)

#: The active hooks. Read directly on hot paths (an empty tuple costs nothing).
active: tuple[Hook, ...] = _DEFAULT


def set_hooks(hooks: Iterable[Hook]) -> None:
    """Replace the active hooks. ``set_hooks([])`` silences anyjob entirely.

    Raises:
        TypeError: One of *hooks* is not callable.
    """
    global active
    new = tuple(hooks)
    for hook in new:
        if not callable(hook):
            msg = f"a hook must be callable with a HookEvent, got {hook!r}"
            raise TypeError(msg)
    active = new


def get_hooks() -> tuple[Hook, ...]:
    """The active hooks, in the order they are called."""
    return active


def reset_hooks() -> None:
    """Restore the default hooks (one :class:`StructlogHook`)."""
    global active
    active = _DEFAULT


def emit(event: HookEvent) -> None:
    """Call every active hook with *event*; a failing hook is logged, never raised."""
    for hook in active:
        try:
            hook(event)
        except Exception as exc:  # a broken hook must not break the job
            logger.exception("anyjob.hook_failed", hook=repr(hook), event_name=event.name, error=repr(exc))


def wanted(name: str) -> bool:
    """Whether any active hook wants events named *name* (see :class:`SelectiveHook`).

    Callers on hot paths ask this before building a :class:`HookEvent`.
    """
    for hook in active:
        wants = getattr(hook, "wants", None)
        if wants is None:
            return True
        try:
            if wants(name):
                return True
        except Exception:  # a broken hook gets the event (and its failure is logged there)  # noqa: BLE001
            return True
    return False
