"""Errors as storable text: the message and the traceback of an exception, never raising."""

from __future__ import annotations

import traceback
from typing import Final

from anyjob._limits import describe_error, printable_text

__all__ = ["MAX_TRACEBACK_LENGTH", "error_text", "error_traceback"]

#: The longest traceback text :func:`error_traceback` gives, in characters.
MAX_TRACEBACK_LENGTH: Final = 64 * 1024
_NO_CUT: Final = 2**62


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
    try:
        text = "".join(traceback.format_exception(error))
    except Exception as failure:  # noqa: BLE001 - a user's exception may break formatting
        text = f"{error_text(error)}\n(the traceback could not be formatted: {type(failure).__qualname__})\n"
    text = printable_text(text, max_length=_NO_CUT)  # escape only: the cut below keeps both ends
    if len(text) > MAX_TRACEBACK_LENGTH:
        head = MAX_TRACEBACK_LENGTH // 4
        tail = MAX_TRACEBACK_LENGTH - head - 100
        left_out = len(text) - head - tail
        text = f"{text[:head]}\n... ({left_out} characters left out) ...\n{text[-tail:]}"
    return text
