"""Durations and timestamps: validation at the boundary, and the clocks we use."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

__all__ = ["UTC", "ensure_aware", "to_seconds", "utcnow"]

#: A duration as accepted everywhere: float (or int) seconds, or a ``timedelta``.


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC ``datetime``."""
    return datetime.now(UTC)


def to_seconds(value: object, name: str, *, allow_inf: bool = False) -> float:
    """Validate a duration and return it in seconds.

    Args:
        value: Seconds as ``int``/``float`` or a ``timedelta``.
        name: The argument's name, for the error message.
        allow_inf: Accept ``math.inf`` (for example "no timeout").

    Raises:
        TypeError: *value* is neither a number nor a ``timedelta`` (``bool`` is refused).
        ValueError: *value* is negative, NaN, or infinite where that is not allowed.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        msg = f"{name} must be seconds (int or float) or a datetime.timedelta, not {type(value).__name__}"
        raise TypeError(msg)
    if math.isnan(seconds):
        msg = f"{name} must not be NaN"
        raise ValueError(msg)
    if seconds < 0:
        msg = f"{name} must not be negative, got {value!r}"
        raise ValueError(msg)
    if math.isinf(seconds) and not allow_inf:
        msg = f"{name} must be finite, got {value!r}"
        raise ValueError(msg)
    return seconds


def ensure_aware(value: object, name: str) -> datetime:
    """Validate a timezone-aware ``datetime`` and return it converted to UTC.

    Raises:
        TypeError: *value* is not a ``datetime``.
        ValueError: *value* is naive (has no timezone).
    """
    if not isinstance(value, datetime):
        msg = f"{name} must be a datetime.datetime, not {type(value).__name__}"
        raise TypeError(msg)
    if value.tzinfo is None or value.utcoffset() is None:
        msg = f"{name} must be timezone-aware (for example datetime.now(UTC)), got a naive datetime"
        raise ValueError(msg)
    return value.astimezone(UTC)
