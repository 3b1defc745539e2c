"""The standard library's side of the default hook: where anyjob logs while structlog is unconfigured.

A library must not configure logging, and unconfigured structlog prints every event to
stdout (its ``PrintLogger``), into the output of the application's own script. So the
default hook sends its events to structlog only once the application has configured
structlog (``structlog.is_configured()``); until then it sends them to the standard
library's ``logging.getLogger("anyjob")``, where the application's logging configuration
applies, and where, with none at all, warnings reach stderr through logging's "last
resort" handler (its default level, WARNING, keeps the debug and info events out).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, final

from anyjob._error_text import error_text, traceback_text

if TYPE_CHECKING:
    from anyjob.instrumentation._hooks import HookEvent

__all__ = ["FAST", "STDLIB", "STDLIB_CACHE", "Level", "enabled", "log", "write"]

#: anyjob's standard-library logger (made once; the logging module keeps one per name).
STDLIB: Final = logging.getLogger("anyjob")

#: The dict in which :data:`STDLIB` keeps its ``isEnabledFor`` answers by level. The logging
#: module empties it (never replaces it) whenever a level changes anywhere, and
#: ``logging.disable`` does too, so an answer found in it is the answer ``isEnabledFor``
#: gives now, provided the logger is not ``disabled`` (which it checks first).
STDLIB_CACHE: Final[dict[int, bool]] = vars(STDLIB).get("_cache", {})

#: Whether :data:`STDLIB_CACHE` may be read instead of calling ``STDLIB.isEnabledFor``: the
#: logger is the standard library's own class, with the cache as described (CPython 3.7+).
#: Otherwise (an application's own logger class) the logger is asked every time.
FAST: Final = (
    type(STDLIB).isEnabledFor is logging.Logger.isEnabledFor and vars(STDLIB).get("_cache") is STDLIB_CACHE
)


@final
class Level(int):
    """A standard-library level: an event is wanted while :data:`STDLIB` is enabled for it.

    The hook registry keeps one of these, instead of a yes or no, for an event that
    only the default hook might want while structlog is unconfigured (see
    ``_hooks.wanted``).
    """

    __slots__ = ()


def enabled(level: int) -> bool:
    """Whether :data:`STDLIB` logs at *level* now (the application's logging configuration decides)."""
    return STDLIB.isEnabledFor(level)


def log(level: int, name: str, fields: Mapping[str, object], error: BaseException | None = None) -> None:
    """Log the event *name* at *level* through :data:`STDLIB` (the caller asked :func:`enabled`).

    The message is the event name followed by its fields as ``key=value`` pairs (values
    as ``repr``, like structlog's ``KeyValueRenderer``); the same fields, and the name as
    ``event``, are the record's attributes (``extra``) for a structured formatter. With
    *error*, the record carries it as ``exc_info``: every formatter shows its traceback.
    """
    message = " ".join([name, *(f"{key}={value!r}" for key, value in fields.items())])
    STDLIB.log(level, message, exc_info=error, extra={"event": name, **fields})


def write(structlog_logger: Any, level: int, event: HookEvent, traced: BaseException | None) -> None:
    """Log *event* at *level*: through *structlog_logger*, or through :data:`STDLIB` when it is ``None``.

    The fields are the job's id and name, and where known the duration, attempt, wait
    and error (as ``"Type: message"``). *traced*, an error whose traceback goes with the
    event, is the ``exception`` field through structlog (bounded text, see
    ``anyjob._error_text.traceback_text``) and ``exc_info`` through logging.
    """
    fields: dict[str, object] = {"job_id": event.job_id, "job_name": event.job_name}
    if event.duration is not None:
        fields["duration"] = round(event.duration, 6)
    if event.attempt is not None:
        fields["attempt"] = event.attempt
    if event.wait is not None:
        fields["wait"] = round(event.wait, 6)
    error = event.error
    if error is not None:
        fields["error"] = f"{type(error).__qualname__}: {_message(error)}"
    if structlog_logger is None:
        log(level, event.name, fields, traced)
        return
    if traced is not None:
        fields["exception"] = traceback_text(traced)
    if level >= logging.WARNING:
        structlog_logger.warning(event.name, **fields)
    elif level >= logging.INFO:
        structlog_logger.info(event.name, **fields)
    else:
        structlog_logger.debug(event.name, **fields)


def _message(error: BaseException) -> str:
    """``str(error)``; for an ``__str__`` that raises, a text saying so (see ``error_text``)."""
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a user's __str__ may raise anything
        return error_text(error)
