"""The hook registry: every lifecycle event anyjob emits goes through here."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, final, runtime_checkable

import attrs
import structlog

from anyjob.instrumentation import _logging

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
"""A job started running (debug)."""
JOB_SUCCEEDED: Final = "anyjob.job_succeeded"
"""A job ended SUCCEEDED (debug; ``duration`` set)."""
JOB_FAILED: Final = "anyjob.job_failed"
"""A job ended FAILED (warning, with the error and its traceback)."""
JOB_CANCELED: Final = "anyjob.job_canceled"
"""A job ended CANCELED (debug)."""
RETRY_SCHEDULED: Final = "anyjob.retry_scheduled"
"""An attempt failed and another one follows after ``wait`` seconds (info)."""
CANCELED_ELSEWHERE: Final = "anyjob.canceled_elsewhere"
"""A waiting job this manager held was canceled by another manager sharing the store (debug)."""
SHUTDOWN_OVERDUE: Final = "anyjob.shutdown_overdue"
"""A job still executing past twice ``shutdown_timeout`` while its manager closes (warning)."""

logger = structlog.get_logger("anyjob")

#: The level the default hook logs each event at; any other event at debug level.
_LEVELS: Final[Mapping[str, int]] = {
    JOB_FAILED: logging.WARNING,
    SHUTDOWN_OVERDUE: logging.WARNING,
    "anyjob.store_unavailable": logging.WARNING,  # anyjob.stores' events (a layer above)
    "anyjob.store_available": logging.WARNING,  # told as clearly as the outage it ends
    RETRY_SCHEDULED: logging.INFO,
}


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
    """The default hook: logs through structlog once the application configured it, else through logging.

    Where the events go: while ``structlog.is_configured()`` is true, to
    ``structlog.get_logger("anyjob")``; until then to the standard library's
    ``logging.getLogger("anyjob")``, so that nothing is ever printed to stdout
    (unconfigured structlog prints there) and the application's logging configuration
    applies (with none at all, logging's last-resort handler writes warnings to stderr).
    anyjob configures neither: filter these events in your own configuration, or
    silence them with ``set_hooks([])``.

    Levels: ``job_failed``, ``shutdown_overdue``, ``store_unavailable`` and ``store_available`` at warning,
    ``retry_scheduled`` (an attempt failed and another one will follow) at info, the
    other state changes at debug. The event name is the structlog event (the first word
    of the standard library's message); the job's id and name, and where known the
    duration, attempt, wait and error, are fields (``key=value`` pairs in the message
    and attributes of the ``LogRecord``). A failed job's warning also carries its
    traceback: through structlog as the ``exception`` field, the one structlog's own
    ``format_exc_info`` fills (bounded, see ``anyjob._error_text.traceback_text``), so
    its renderers show it as a traceback; through logging as the record's ``exc_info``.
    It is formatted only when the warning is logged.
    """

    def wants(self, name: str) -> bool:
        """Whether *name* would be logged now, at its level, where the events go (see the class).

        Through structlog, the answer is worked out once per name and kept until
        structlog is configured again; a logger whose level may change at any time
        without structlog knowing (the standard library's) is asked every time. Through
        logging, the logger is asked (its answers are kept by logging itself).
        """
        decisions = _current_decisions()
        if decisions is not None:
            try:
                return decisions.logged[name]
            except KeyError:
                pass
        answer, settled = _ask_structlog(name)
        if settled and decisions is not None:
            decisions.keep(decisions.logged, name, answer)
        return answer

    def __call__(self, event: HookEvent) -> None:
        """Log *event*."""
        # Ask first (another hook may have wanted the event): building the fields costs
        # more than a filtered-out call.
        name = event.name
        if not self.wants(name):
            return
        traced = event.error if name == JOB_FAILED else None
        level = _LEVELS.get(name, logging.DEBUG)
        _logging.write(logger if structlog.is_configured() else None, level, event, traced)


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
        except Exception as exc:  # a broken hook must not break the job (logged where the default hook logs)
            fields = {"hook": repr(hook), "event_name": event.name, "error": repr(exc)}
            if structlog.is_configured():
                logger.exception("anyjob.hook_failed", **fields)
            elif _logging.enabled(logging.ERROR):
                _logging.log(logging.ERROR, "anyjob.hook_failed", fields, exc)


def emit_job_event(  # noqa: PLR0917 - HookEvent's fields in its order: both callers fit a line
    name: str,
    job_id: str,
    job_name: str,
    labels: Mapping[str, str],
    state: State,
    error: BaseException | None,
    duration: float | None,
) -> None:
    """Build the :class:`HookEvent` *name* of one job and :func:`emit` it.

    The one place a Job and the manager's recorder make their events; the caller has
    asked :func:`wanted` first.
    """
    emit(
        HookEvent(
            name=name,
            job_id=job_id,
            job_name=job_name,
            labels=labels,
            state=state,
            error=error,
            duration=duration,
        )
    )


def wanted(name: str) -> bool:
    """Whether any active hook wants events named *name* (see :class:`SelectiveHook`).

    Callers on hot paths ask this before building a :class:`HookEvent`. The answer
    is worked out once per event name and kept while the active hooks and
    structlog's configuration stay the same (while structlog is unconfigured, the
    default hook's part of it is the level to ask the standard library's logger
    about, whose answer logging keeps); a hook whose answer may change at any time
    (your own :class:`SelectiveHook`) is asked every time.
    """
    decisions = _decisions
    config = _CONFIG
    # _Decisions.hold(), written out: the method call would cost as much as the rest of
    # this question (measured: ~80 ns, ~140 ns with the call; the loop over the hooks it
    # replaces took ~150 ns, and 4 calls).
    if (
        decisions.hooks is active
        and decisions.logger is logger
        and decisions.configured is config.is_configured
        and decisions.wrapper_class is config.default_wrapper_class
        and decisions.caching is config.cache_logger_on_first_use
    ):
        try:
            answer = decisions.wanted[name]
        except KeyError:
            pass
        else:
            if answer is True or answer is False:
                return answer
            # Only the default hook might want it, and the standard library's logging
            # decides (structlog unconfigured): isEnabledFor(answer), written out as well
            # (its cache read directly; a call otherwise, see _logging.STDLIB_CACHE).
            if not _STDLIB.disabled:
                try:
                    return _STDLIB_CACHE[answer]
                except KeyError:
                    pass
            return _STDLIB.isEnabledFor(answer)
    return _decide(name)


# -- deciding early --------------------------------------------------------------------
#
# wanted() is asked twice a job, and what it answers changes only when the active hooks
# change or when the application (re)configures structlog: so the answers are worked out
# once per event name and kept in a _Decisions made for one (hooks, structlog state)
# pair; a change of either makes a new one (trio works out which instruments want which
# hook when they are added, not on every event).
#
# structlog keeps its whole configuration in one object, ``structlog._config._CONFIG``,
# whose attributes configure() and reset_defaults() set (read in structlog 26.1, and
# checked against get_config() at import); get_config() is the public reader, but it
# builds a dict on every call (~170 ns, more than the question it would guard). So
# structlog's state is read off that object: no call, three identity tests. Where a
# structlog release keeps it elsewhere, _CONFIG is None and nothing is kept (every
# question is asked, as it was before).
#
# While structlog is unconfigured, the default hook logs through the standard library,
# whose levels may change at any time (setLevel, dictConfig, logging.disable): what the
# default hook wants is then kept as the level to ask about (a _logging.Level), and
# wanted() reads logging's own answer for it out of the logger's cache, as
# Logger.isEnabledFor does first (no call: the hot path of a new user's default
# configuration costs what it did when these events were simply not wanted).


def _find_structlog_config() -> Any:
    """The object structlog keeps its configuration in, once it agrees with ``get_config()``."""
    config: Any = getattr(getattr(structlog, "_config", None), "_CONFIG", None)
    try:
        public = structlog.get_config()
        agrees = (
            config.is_configured is structlog.is_configured()
            and config.default_wrapper_class is public["wrapper_class"]
            and config.cache_logger_on_first_use is public["cache_logger_on_first_use"]
        )
    except Exception:  # noqa: BLE001 - another structlog layout: decide nothing early
        return None
    return config if agrees else None


_CONFIG: Final[Any] = _find_structlog_config()

# Read on every wanted() question that logging decides (module globals: no attribute lookups).
_STDLIB: Final = _logging.STDLIB
_STDLIB_CACHE: Final = _logging.STDLIB_CACHE

#: structlog's filtering loggers: what such a logger answers to ``is_enabled_for`` is
#: fixed by its class (``level >= min_level``), so it may be kept.
_FILTERING: Final = frozenset(
    structlog.make_filtering_bound_logger(level)
    for level in (0, 10, 20, 30, 40, 50)  # NOTSET..CRITICAL
)

_UNSET: Final = object()


@final
@attrs.define(eq=False)
class _Decisions:
    """Answers kept for one tuple of active hooks and one state of structlog.

    The state is what the default hook's answers depend on: the logger it asks
    (replaced only by tests), whether structlog is configured, its wrapper class, and
    whether it caches loggers on first use (then the next question caches this
    logger, and a later change of level no longer reaches it).

    Invariant: while :meth:`hold` is true, every answer in ``wanted`` is what asking
    ``hooks`` one by one (:func:`_ask_hooks`) would give, and every answer in
    ``logged`` is what :meth:`StructlogHook.wants` would give. Only settled answers go
    in (see :func:`_ask_structlog`); nothing else changes a _Decisions. An answer in
    ``wanted`` is a yes or no, or a :class:`~anyjob.instrumentation._logging.Level`:
    then the answer is whether the standard library's ``anyjob`` logger is enabled for
    it, asked each time (only while structlog is unconfigured and logging's own logger
    class is used, see ``_logging.FAST``).
    """

    hooks: tuple[Hook, ...] | None
    logger: Any
    configured: Any
    wrapper_class: Any
    caching: Any
    wanted: dict[str, bool | _logging.Level] = attrs.field(factory=dict[str, bool | _logging.Level])
    logged: dict[str, bool] = attrs.field(factory=dict[str, bool])

    @classmethod
    def now(cls) -> _Decisions:
        """Empty decisions for the active hooks and structlog's state now."""
        c = _CONFIG
        return cls(active, logger, c.is_configured, c.default_wrapper_class, c.cache_logger_on_first_use)

    def hold(self) -> bool:
        """Whether the hooks and structlog's state are still those these answers are for."""
        config = _CONFIG
        return (
            self.hooks is active
            and self.logger is logger
            and self.configured is config.is_configured
            and self.wrapper_class is config.default_wrapper_class
            and self.caching is config.cache_logger_on_first_use
        )

    def keep(self, answers: dict[str, Any], name: str, answer: bool | _logging.Level) -> None:  # noqa: FBT001
        """Keep *answer*, unless the state changed while it was worked out."""
        if self.hold():
            answers[name] = answer


#: The decisions in force (none until the first question); replaced after a change.
_decisions = _Decisions(None, _UNSET, _UNSET, _UNSET, _UNSET)


def _current_decisions() -> _Decisions | None:
    """The decisions for the active hooks and structlog's state now (new ones after a change).

    ``None`` when structlog's configuration cannot be watched (nothing is kept then).
    """
    global _decisions
    if _CONFIG is None:
        return None
    decisions = _decisions
    if not decisions.hold():
        decisions = _decisions = _Decisions.now()
    return decisions


def _decide(name: str) -> bool:
    """:func:`wanted`, when the answer is not kept yet (or cannot be)."""
    decisions = _current_decisions()
    hooks = active if decisions is None else decisions.hooks
    answer, settled = _ask_hooks(hooks or (), name, decisions)
    if settled and decisions is not None:
        decisions.keep(decisions.wanted, name, answer)
    if answer is True or answer is False:
        return answer
    return _logging.enabled(answer)


def _ask_hooks(
    hooks: tuple[Hook, ...], name: str, decisions: _Decisions | None
) -> tuple[bool | _logging.Level, bool]:
    """Ask *hooks* in order whether one wants *name*: (the answer, whether it may be kept).

    It may be kept when every answer asked for may be: a hook without ``wants`` (always
    yes) and the default hook (see :func:`_ask_structlog`), never another selective hook
    (its answer may change at any time, and it expects to be asked). While structlog is
    unconfigured the default hook's answer is the standard library logger's, which may
    change at any time: when no other hook wants *name*, the answer is then the
    :class:`~anyjob.instrumentation._logging.Level` to ask that logger about.
    """
    settled = True
    by_level: _logging.Level | None = None
    for hook in hooks:
        if type(hook) is StructlogHook:
            if _logging.FAST and not structlog.is_configured():
                by_level = _logging.Level(_LEVELS.get(name, logging.DEBUG))
                continue
            answer = None if decisions is None else decisions.logged.get(name)
            if answer is None:
                answer, kept = _ask_structlog(name)
                if kept and decisions is not None:
                    decisions.keep(decisions.logged, name, answer)
                settled = settled and kept
            if answer:
                return True, settled
            continue
        wants = getattr(hook, "wants", None)
        if wants is None:
            return True, settled
        try:
            if wants(name):
                return True, False
        except Exception:  # a broken hook gets the event (and its failure is logged there)  # noqa: BLE001
            return True, False
        settled = False
    return (False if by_level is None else by_level), settled


def _ask_structlog(name: str) -> tuple[bool, bool]:
    """What :meth:`StructlogHook.wants` answers: (the answer, whether it may be kept).

    While structlog is unconfigured the standard library's ``anyjob`` logger answers,
    and that answer is never kept here (logging keeps it, and empties its cache
    whenever a level changes). Otherwise structlog is asked. Its answer may be kept
    while structlog's state (see :class:`_Decisions`) stays the same when it depends
    on nothing else: a filtering logger (``make_filtering_bound_logger``), whose answer
    is fixed by its class. Any other logger (the standard library's, whose level may
    change at any time; your own class) is asked every time.
    """
    level = _LEVELS.get(name, logging.DEBUG)
    if not structlog.is_configured():
        return _logging.enabled(level), False
    # What asking the lazy proxy does: bind() builds the logger (or gives the cached one).
    target = logger.bind()
    try:
        answer = bool(target.is_enabled_for(level))
    except AttributeError:  # a configured wrapper class without is_enabled_for
        return True, False
    # The next bind() gives a logger of the same class while the state stays the same:
    # the cached one, or one of the proxy's own wrapper class or else the configured one.
    return answer, type(target) in _FILTERING
