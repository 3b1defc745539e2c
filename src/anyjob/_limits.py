"""The limits on what a JobManager accepts, the same for every store, checked at the boundary.

Every value a user hands the manager (at ``submit``, at the queries, from inside a job)
passes one of these checks before anything is stored, so no store ever sees a value it
cannot keep and no driver error (``sqlite3.*``, ``psycopg.*``, ``OverflowError``,
``UnicodeEncodeError``, ``RecursionError``) reaches a user. A wrong type raises
``TypeError``, a wrong value ``ValueError``; the message names the argument and the limit.

=====================  ==================================================================
What                   Limit
=====================  ==================================================================
job id                 str, 1..``MAX_ID_LENGTH`` (255) characters, text (see below)
job name               str, 1..``MAX_NAME_LENGTH`` (255) characters, text
labels                 at most ``MAX_LABELS`` (64) pairs; keys 1..``MAX_LABEL_KEY_LENGTH``
                       (128) and values 0..``MAX_LABEL_VALUE_LENGTH`` (1024) characters, text
priority               int (not bool), ``MIN_PRIORITY``..``MAX_PRIORITY`` (-2**31..2**31 - 1)
params, result         JSON data (see ``anyjob._records.check_json_safe``): nesting depth at
                       most ``MAX_JSON_DEPTH`` (64), ints ``MIN_JSON_INT``..``MAX_JSON_INT``
                       (signed 64-bit), finite floats, strings and keys as text
progress               a real number (not bool), finite, 0 <= value <= 1
progress message       None or str, 0..``MAX_MESSAGE_LENGTH`` (4096) characters, text
delay, at              at most ``MAX_DELAY`` seconds (100 years) ahead; not both; a delay is
                       not negative or NaN; an ``at`` in the past means now
limit, offset          limit int 1..``MAX_PAGE_LIMIT`` (1000); offset int 0..``MAX_OFFSET`` (2**62)
created_after/before   timezone-aware datetimes
=====================  ==================================================================

"Text" means: no NUL character (PostgreSQL cannot keep one) and valid Unicode, that is
no lone surrogate such as ``os.fsdecode`` makes of a file name that is not UTF-8 (no
store can encode one). Lengths count characters (code points).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from anyjob._time import aware_timestamp, short_repr, to_seconds

__all__ = [
    "MAX_DELAY",
    "MAX_ERROR_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT",
    "MAX_LABELS",
    "MAX_LABEL_KEY_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "MAX_MESSAGE_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_OFFSET",
    "MAX_PAGE_LIMIT",
    "MAX_PRIORITY",
    "MIN_JSON_INT",
    "MIN_PRIORITY",
    "check_created",
    "check_id",
    "check_labels",
    "check_message",
    "check_name",
    "check_new_id",
    "check_page",
    "check_priority",
    "check_progress",
    "check_start",
    "check_text",
    "describe_error",
    "printable_text",
    "text_problem",
]

#: The longest job id, in characters.
MAX_ID_LENGTH: Final = 255
#: The longest job name, in characters.
MAX_NAME_LENGTH: Final = 255
#: The most label pairs one job may have.
MAX_LABELS: Final = 64
#: The longest label key, in characters (keys are never empty).
MAX_LABEL_KEY_LENGTH: Final = 128
#: The longest label value, in characters (values may be empty).
MAX_LABEL_VALUE_LENGTH: Final = 1024
#: The lowest priority (PostgreSQL's ``integer``).
MIN_PRIORITY: Final = -(2**31)
#: The highest priority (PostgreSQL's ``integer``).
MAX_PRIORITY: Final = 2**31 - 1
#: The deepest nesting of lists and dicts in params and results (``[]`` is depth 1).
MAX_JSON_DEPTH: Final = 64
#: The lowest int in params and results (signed 64-bit).
MIN_JSON_INT: Final = -(2**63)
#: The highest int in params and results (signed 64-bit).
MAX_JSON_INT: Final = 2**63 - 1
#: The longest progress message, in characters.
MAX_MESSAGE_LENGTH: Final = 4096
#: The longest error message a record keeps (longer ones are cut, see :func:`describe_error`).
MAX_ERROR_LENGTH: Final = 4096
#: How far ahead ``delay``/``at`` may schedule a job, in seconds: 100 years.
MAX_DELAY: Final = 100 * 365.25 * 86400.0
#: The most jobs one ``list()`` call returns.
MAX_PAGE_LIMIT: Final = 1000
#: The largest ``offset`` of ``list()``.
MAX_OFFSET: Final = 2**62

_EMPTY_LABELS: Final[Mapping[str, str]] = MappingProxyType({})


# -- text ---------------------------------------------------------------------------------


def text_problem(value: str) -> str | None:
    """What makes *value* unfit to store (``"a NUL character"``, ``"a lone surrogate ..."``), or None.

    The common case, ASCII without NUL, costs two C-level scans.
    """
    if "\x00" in value:
        return "a NUL character"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"a lone surrogate {value[error.start]!r} at index {error.start} (not valid Unicode)"
    return None


def check_text(value: object, what: str, *, min_length: int = 0, max_length: int) -> str:
    """Validate a str of *min_length*..*max_length* characters, without NUL, valid Unicode.

    Args:
        value: The value to check.
        what: What it is, for the message (``"job name"``).
        min_length: The fewest characters allowed.
        max_length: The most characters allowed.

    Returns:
        *value* as a plain ``str`` (a subclass's content copied).

    Raises:
        TypeError: *value* is not a str.
        ValueError: Its length is out of range, or it holds a NUL or a lone surrogate.
    """
    if type(value) is not str:
        if not isinstance(value, str):
            msg = f"{what} must be a str, not {type(value).__name__}"
            raise TypeError(msg)
        value = str.__str__(value)  # a plain copy: a subclass's own methods play no part later
    length = len(value)
    if length < min_length or length > max_length:
        if min_length == 1 and length == 0:
            msg = f"{what} must not be empty"
        else:
            msg = f"{what} must be {min_length} to {max_length} characters long, got {length}"
        raise ValueError(msg)
    problem = text_problem(value)
    if problem is not None:
        msg = f"{what} must be text without NUL characters or lone surrogates, but holds {problem}"
        raise ValueError(msg)
    return value


def printable_text(value: str, max_length: int = MAX_ERROR_LENGTH) -> str:
    """*value* made storable whatever it holds: NULs and lone surrogates escaped, cut to *max_length*.

    For text the manager records on a job's behalf (an error's message), where refusing is
    no option. It never raises.
    """
    if text_problem(value) is not None:
        value = value.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    if len(value) > max_length:
        value = f"{value[: max_length - 40]}... ({len(value)} characters, cut)"
    return value


def describe_error(error: BaseException) -> str:
    """The message of *error* as a record keeps it; it never raises.

    The message is ``str(error)``, or the type's name when that is empty, made storable
    by :func:`printable_text`. An ``__str__`` that raises gives a message saying so.
    """
    try:
        text = str(error)
    except Exception as failure:  # noqa: BLE001 - a user's __str__ may raise anything
        name = type(error).__qualname__
        text = f"<{name}: str() of this error raised {type(failure).__qualname__}>"
    else:
        if type(text) is not str:  # pragma: no cover - str() always gives a plain str
            text = str.__str__(text)
    return printable_text(text or type(error).__qualname__)


# -- ids, names, labels, priority -----------------------------------------------------------


def check_id(value: object) -> str:
    """Validate a job id given to a lookup (``get``, ``wait``, ``cancel``, ...).

    Raises:
        TypeError: Not a str.
        ValueError: Empty, over ``MAX_ID_LENGTH`` characters, or not text (NUL, lone surrogate).
    """
    if type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and value.isascii() and "\x00" not in value:
        return value
    return check_text(value, "job id", min_length=1, max_length=MAX_ID_LENGTH)


def check_new_id(value: object) -> str:
    """Validate the id given to ``submit``: the same rules as :func:`check_id`.

    Raises:
        TypeError: Not a str.
        ValueError: Empty, over ``MAX_ID_LENGTH`` characters, or not text (NUL, lone surrogate).
    """
    return check_id(value)


def check_name(value: object, what: str = "job name") -> str:
    """Validate a job name (or a ``name`` filter, with *what* saying which).

    Raises:
        TypeError: Not a str.
        ValueError: Empty, over ``MAX_NAME_LENGTH`` characters, or not text (NUL, lone surrogate).
    """
    if type(value) is str and 0 < len(value) <= MAX_NAME_LENGTH and value.isascii() and "\x00" not in value:
        return value
    return check_text(value, what, min_length=1, max_length=MAX_NAME_LENGTH)


def check_labels(labels: object) -> Mapping[str, str]:
    """Validate ``str -> str`` labels and return a read-only copy (``None`` gives an empty one).

    Raises:
        TypeError: Not a mapping, or a key or value is not a str.
        ValueError: More than ``MAX_LABELS`` pairs, a key empty or over
            ``MAX_LABEL_KEY_LENGTH`` characters, a value over ``MAX_LABEL_VALUE_LENGTH``,
            or a key or value that is not text (NUL, lone surrogate).
    """
    if labels is None:
        return _EMPTY_LABELS
    if not isinstance(labels, Mapping):
        msg = f"labels must be a mapping of str to str, not {type(labels).__name__}"
        raise TypeError(msg)
    pairs: Mapping[object, object] = labels  # pyright: ignore[reportUnknownVariableType]
    if len(pairs) > MAX_LABELS:
        msg = f"labels must have at most {MAX_LABELS} pairs, got {len(pairs)}"
        raise ValueError(msg)
    copied: dict[str, str] = {}
    for key, value in pairs.items():
        if not isinstance(key, str) or not isinstance(value, str):
            msg = f"labels must map str to str, got {short_repr(key)}: {short_repr(value)}"
            raise TypeError(msg)
        checked_key = check_text(key, "a label key", min_length=1, max_length=MAX_LABEL_KEY_LENGTH)
        copied[checked_key] = check_text(
            value, f"the value of label {short_repr(key)}", max_length=MAX_LABEL_VALUE_LENGTH
        )
    if len(copied) > MAX_LABELS:  # pragma: no cover - a mapping whose len() lied
        msg = f"labels must have at most {MAX_LABELS} pairs, got {len(copied)}"
        raise ValueError(msg)
    return MappingProxyType(copied)


def check_priority(value: object) -> int:
    """Validate a priority.

    Raises:
        TypeError: Not an int (``bool`` is refused).
        ValueError: Outside ``MIN_PRIORITY``..``MAX_PRIORITY`` (-2**31..2**31 - 1).
    """
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"priority must be an int, not {type(value).__name__}"
            raise TypeError(msg)
        value = int.__int__(value)  # a plain int (an IntEnum's value)
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        msg = f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {short_repr(value)}"
        raise ValueError(msg)
    return value


# -- progress -------------------------------------------------------------------------------


def check_progress(value: object) -> float:
    """Validate a progress value and return it as a float.

    Raises:
        TypeError: Not a real number (``bool`` is refused; ``Fraction``, ``Decimal`` and
            numpy scalars are taken).
        ValueError: NaN, infinite, or outside ``[0, 1]`` (``10**400`` included).
    """
    cls = type(value)
    if cls is float:
        if 0.0 <= value <= 1.0:  # type: ignore[operator] # NaN fails the comparison
            return value  # type: ignore[return-value]
    elif cls is int:
        if 0 <= value <= 1:  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
    elif isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        msg = f"progress must be a real number in [0, 1], not {cls.__name__}"
        raise TypeError(msg)
    else:
        try:
            progress = float(value)
        except (OverflowError, ValueError):  # 10**400 as a Fraction, Decimal("sNaN")
            progress = math.nan
        if 0.0 <= progress <= 1.0:
            return progress
    msg = f"progress must be a finite number in [0, 1], got {short_repr(value)}"
    raise ValueError(msg)


def check_message(value: object) -> str | None:
    """Validate a progress message: ``None`` or text of at most ``MAX_MESSAGE_LENGTH`` characters.

    Raises:
        TypeError: Neither ``None`` nor a str.
        ValueError: Over ``MAX_MESSAGE_LENGTH`` characters, or not text (NUL, lone surrogate).
    """
    if value is None:
        return None
    if type(value) is str and len(value) <= MAX_MESSAGE_LENGTH and value.isascii() and "\x00" not in value:
        return value
    if not isinstance(value, str):
        msg = f"progress message must be a str or None, not {type(value).__name__}"
        raise TypeError(msg)
    return check_text(value, "progress message", max_length=MAX_MESSAGE_LENGTH)


# -- schedule and queries ---------------------------------------------------------------------


def check_start(delay: object, at: object, now: float) -> float:
    """Validate ``submit``'s ``delay``/``at`` and return the seconds to wait from *now*.

    Args:
        delay: ``None``, or seconds (int, float) or a ``timedelta``.
        at: ``None``, or a timezone-aware ``datetime``; a time in the past means now.
        now: The current POSIX time.

    Returns:
        Seconds from *now* until the job may start (0.0 when neither is given).

    Raises:
        TypeError: *delay* is not a duration, or *at* not a datetime.
        ValueError: Both are given; *delay* is negative or NaN; *at* is naive; either is
            more than ``MAX_DELAY`` seconds (100 years) ahead.
    """
    if delay is not None:
        if at is not None:
            msg = "give either delay or at, not both"
            raise ValueError(msg)
        if type(delay) is float and 0.0 <= delay <= MAX_DELAY:
            return delay
        seconds = to_seconds(delay, "delay", allow_inf=True)
        if seconds > MAX_DELAY:
            msg = f"delay must be at most {MAX_DELAY:.0f} seconds (100 years), got {_show_duration(delay)}"
            raise ValueError(msg)
        return seconds
    if at is None:
        return 0.0
    seconds = aware_timestamp(at, "at") - now
    if seconds > MAX_DELAY:
        msg = f"at must be at most 100 years ahead, got {short_repr(at)}"
        raise ValueError(msg)
    return max(seconds, 0.0)


def _show_duration(value: object) -> str:
    return str(value) if isinstance(value, timedelta) else short_repr(value)


def check_page(limit: object, offset: object) -> tuple[int, int]:
    """Validate ``list()``'s ``limit`` and ``offset``.

    Returns:
        ``(limit, offset)`` as plain ints.

    Raises:
        TypeError: Either is not an int (``bool`` is refused).
        ValueError: *limit* outside 1..``MAX_PAGE_LIMIT`` or *offset* outside 0..``MAX_OFFSET``.
    """
    checked_limit = _check_int(limit, "limit")
    checked_offset = _check_int(offset, "offset")
    if not 1 <= checked_limit <= MAX_PAGE_LIMIT:
        msg = f"limit must be between 1 and {MAX_PAGE_LIMIT}, got {short_repr(checked_limit)}"
        raise ValueError(msg)
    if not 0 <= checked_offset <= MAX_OFFSET:
        msg = f"offset must be between 0 and {MAX_OFFSET} (2**62), got {short_repr(checked_offset)}"
        raise ValueError(msg)
    return checked_limit, checked_offset


def check_created(value: object, name: str) -> float | None:
    """Validate a ``created_after``/``created_before`` filter and return it as a POSIX timestamp.

    ``None`` stays ``None``. Any aware datetime gives a timestamp (none overflows).

    Raises:
        TypeError: Not a datetime.
        ValueError: A naive datetime.
    """
    return None if value is None else aware_timestamp(value, name)


def _check_int(value: object, name: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an int, not {type(value).__name__}"
        raise TypeError(msg)
    return int.__int__(value)
