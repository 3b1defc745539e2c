"""Durations and timestamps: validation at the boundary, and the clocks we use."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

__all__ = ["UTC", "aware_timestamp", "ensure_aware", "short_repr", "to_datetime", "to_seconds", "utcnow"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC ``datetime``."""
    return datetime.now(UTC)


def to_datetime(timestamp: float | None) -> datetime | None:
    """A POSIX timestamp as an aware UTC ``datetime``; ``None`` stays ``None``."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to about *limit* characters, for error messages; it never raises.

    ``repr(10**5000)`` raises ``ValueError`` (Python's int-to-str digit limit) and a user's
    ``__repr__`` may raise anything: a message about a bad value must not fail itself.
    """
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any failure of a user's __repr__ gives the fallback
        if isinstance(value, int):
            return f"<an int of {value.bit_length()} bits>"
        return f"<a {type(value).__qualname__} whose repr() fails>"
    if len(text) > limit:
        return f"{text[: limit - 5]}... ({len(text)} characters)"
    return text


def to_seconds(value: object, name: str, *, allow_inf: bool = False) -> float:
    """Validate a duration and return it in seconds.

    Args:
        value: Seconds as ``int``/``float`` or a ``timedelta``.
        name: The argument's name, for the error message.
        allow_inf: Accept ``math.inf`` (for example "no timeout"); an int too large
            for a float then counts as infinite too.

    Raises:
        TypeError: *value* is neither a number nor a ``timedelta`` (``bool`` is refused).
        ValueError: *value* is negative, NaN, or infinite where that is not allowed
            (an int too large for a float, such as ``10**400``, counts as infinite).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond a float's range
            seconds = math.inf if value > 0 else -math.inf
    else:
        msg = f"{name} must be seconds (int or float) or a datetime.timedelta, not {type(value).__name__}"
        raise TypeError(msg)
    if math.isnan(seconds):
        msg = f"{name} must not be NaN"
        raise ValueError(msg)
    if seconds < 0:
        msg = f"{name} must not be negative, got {short_repr(value)}"
        raise ValueError(msg)
    if math.isinf(seconds) and not allow_inf:
        msg = f"{name} must be finite, got {short_repr(value)}"
        raise ValueError(msg)
    return seconds


def ensure_aware(value: object, name: str) -> datetime:
    """Validate a timezone-aware ``datetime`` and return it converted to UTC.

    Raises:
        TypeError: *value* is not a ``datetime``.
        ValueError: *value* is naive (has no timezone), or is not a time in UTC's
            range (``datetime.max`` in a zone west of UTC is after year 9999 in UTC).
    """
    checked = _check_aware(value, name)
    try:
        return checked.astimezone(UTC)
    except OverflowError:
        msg = f"{name} is outside the range of datetime in UTC, got {short_repr(value)}"
        raise ValueError(msg) from None


def aware_timestamp(value: object, name: str) -> float:
    """Validate a timezone-aware ``datetime`` and return its POSIX timestamp; it never overflows.

    Unlike ``ensure_aware(value, name).timestamp()``, any aware datetime gives an answer
    (``datetime.max`` west of UTC, ``datetime.min`` east of it).

    Raises:
        TypeError: *value* is not a ``datetime``.
        ValueError: *value* is naive (has no timezone).
    """
    return (_check_aware(value, name) - _EPOCH).total_seconds()


def _check_aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        msg = f"{name} must be a datetime.datetime, not {type(value).__name__}"
        raise TypeError(msg)
    if value.tzinfo is None or value.utcoffset() is None:
        msg = f"{name} must be timezone-aware (for example datetime.now(UTC)), got a naive datetime"
        raise ValueError(msg)
    return value
