"""Errors as storable text: the message and the traceback of an exception, never raising."""

from __future__ import annotations

import traceback
from typing import Final

from anyjob._limits import describe_error, printable_text

__all__ = [
    "MAX_STORED_TRACEBACK_LENGTH",
    "MAX_TRACEBACK_LENGTH",
    "error_text",
    "error_traceback",
    "error_type_of",
    "traceback_text",
]

#: The longest traceback text :func:`error_traceback` gives, in characters.
MAX_TRACEBACK_LENGTH: Final = 64 * 1024
#: The longest traceback text :func:`traceback_text` gives (what a job record keeps), in characters.
MAX_STORED_TRACEBACK_LENGTH: Final = 16 * 1024
_NO_CUT: Final = 2**62
#: Room kept for the line saying how much was left out.
_MARKER_ROOM: Final = 100


#: The longest ``error_type`` kept, in characters.
MAX_ERROR_TYPE_LENGTH: Final = 256


def error_type_of(error: BaseException) -> str:
    """The qualified type name of *error* as storable text (``error_type``); it never raises.

    A name with NULs or lone surrogates (a class made with ``type()``) is escaped, a very
    long one cut, as for the message.
    """
    name = type(error).__qualname__
    if name.isascii() and "\x00" not in name and len(name) <= MAX_ERROR_TYPE_LENGTH:
        return name
    return printable_text(name, MAX_ERROR_TYPE_LENGTH)


def error_text(error: BaseException) -> str:
    """The message of *error* as storable text; it never raises.

    ``str(error)``, or the type's name when that is empty; an ``__str__`` that raises
    gives a text saying so. NUL characters and lone surrogates are escaped and the
    text is cut to ``anyjob._limits.MAX_ERROR_LENGTH`` (4096) characters.
    """
    return describe_error(error)


def error_traceback(error: BaseException) -> str:
    """The formatted traceback of *error* (causes and contexts included) as storable text.

    It never raises. NUL characters and lone surrogates are escaped; a traceback over
    :data:`MAX_TRACEBACK_LENGTH` (64 KiB) characters keeps its beginning and its end
    (where the error itself is) with a line saying how much was left out between.
    """
    return _bounded_traceback(error, MAX_TRACEBACK_LENGTH)


def traceback_text(error: BaseException) -> str:
    """The formatted traceback of *error* as a job record keeps it; it never raises.

    :func:`error_traceback` bounded to :data:`MAX_STORED_TRACEBACK_LENGTH` (16 KiB)
    characters: ``traceback.format_exception`` (causes and contexts included), NUL
    characters and lone surrogates escaped, so every store can keep it. A longer
    traceback keeps its beginning and, mostly, its end (where the error itself is),
    with a line ``... (N characters left out) ...`` between. When the exception cannot
    be formatted at all (a broken ``__notes__``, nesting too deep), the text still
    names its type and message, with the frames of its own traceback where those can
    be formatted.
    """
    return _bounded_traceback(error, MAX_STORED_TRACEBACK_LENGTH)


def _bounded_traceback(error: BaseException, limit: int) -> str:
    try:
        text = "".join(traceback.format_exception(error))
    except Exception as failure:  # noqa: BLE001 - a user's exception may break formatting
        text = _fallback(error, failure)
    text = printable_text(text, max_length=_NO_CUT)  # escape only: the cut below keeps both ends
    if len(text) > limit:
        head = limit // 4
        tail = limit - head - _MARKER_ROOM
        left_out = len(text) - head - tail
        text = f"{text[:head]}\n... ({left_out} characters left out) ...\n{text[-tail:]}"
    return text


def _fallback(error: BaseException, failure: Exception) -> str:
    """What :func:`_bounded_traceback` says of an exception ``format_exception`` failed on."""
    try:
        frames = "".join(traceback.format_tb(error.__traceback__))
    except Exception:  # noqa: BLE001 - the frames are a bonus
        frames = ""
    cls = type(error)
    try:
        name = f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__
    except Exception:  # noqa: BLE001 - a metaclass may break even this
        name = "an exception"
    heading = f"Traceback (most recent call last):\n{frames}" if frames else ""
    reason = type(failure).__qualname__
    return f"{heading}{name}: {error_text(error)}\n(the full traceback could not be formatted: {reason})\n"
