"""The retry policy value: how many tries, how long to wait between them, and what to retry."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import timedelta
from typing import TypeAlias, cast, final

import attrs

from anyjob._time import to_seconds

__all__ = ["Retry", "RetryOn"]

#: What a :class:`Retry` retries: an exception type, a tuple of them, or a predicate.
RetryOn: TypeAlias = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


def _check_attempts(_inst: object, _attr: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"Retry attempts must be an int (the total number of tries), not {type(value).__name__}"
        raise TypeError(msg)
    if value < 1:
        msg = f"Retry attempts is the total number of tries and must be >= 1, got {value}"
        raise ValueError(msg)


def _convert_delay(value: float | timedelta) -> float:
    return to_seconds(value, "Retry delay")


def _convert_jitter(value: float | timedelta) -> float:
    return to_seconds(value, "Retry jitter")


def _optional_duration(value: float | timedelta | None) -> float | None:
    return None if value is None else to_seconds(value, "Retry max_delay")


def _convert_backoff(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"Retry backoff must be a number, not {type(value).__name__}"
        raise TypeError(msg)
    backoff = float(value)
    if not (1.0 <= backoff < math.inf):
        msg = f"Retry backoff must be a finite number >= 1, got {value!r}"
        raise ValueError(msg)
    return backoff


def _check_on(_inst: object, _attr: object, value: object) -> None:
    def is_exception_type(item: object) -> bool:
        return isinstance(item, type) and issubclass(item, BaseException)

    if isinstance(value, tuple):
        items: tuple[object, ...] = cast("tuple[object, ...]", value)
        if not items or not all(is_exception_type(item) for item in items):
            msg = f"Retry on= as a tuple must hold exception types, got {value!r}"
            raise TypeError(msg)
    elif is_exception_type(value):
        items = (value,)
    elif callable(value):
        return
    else:
        msg = f"Retry on= must be an exception type, a tuple of them, or a predicate, not {value!r}"
        raise TypeError(msg)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, Exception)):
            msg = (
                f"Retry on= must name Exception subclasses; {item!r} is not one "
                "(cancellation, KeyboardInterrupt and SystemExit are never retried)"
            )
            raise ValueError(msg)  # noqa: TRY004 - the right kind of argument with a refused value


@final
@attrs.frozen
class Retry:
    """A retry policy for :class:`~anyjob.Executor`.

    The wait before try ``k + 1`` is
    ``min(delay * backoff ** (k - 1), max_delay) + uniform(0, jitter)``.
    Only ``Exception`` instances are ever retried: cancellation,
    ``KeyboardInterrupt`` and ``SystemExit`` never are, whatever *on* says.

    Args:
        attempts: The total number of tries, >= 1 (``Retry(1)`` never retries).
        delay: The wait after the first failed try (seconds or ``timedelta``).
        backoff: The factor the wait grows by after each further try (>= 1).
        max_delay: A cap on the wait before jitter, or ``None``.
        jitter: Up to this many seconds are added at random to each wait.
        on: What to retry: an exception type, a tuple of them, or a predicate
            ``(Exception) -> bool``. By default every ``Exception``.

    Raises:
        ValueError: attempts < 1, a negative, NaN or infinite duration, backoff < 1.
        TypeError: an argument of the wrong type.
    """

    attempts: int = attrs.field(default=3, validator=_check_attempts)
    delay: float = attrs.field(default=1.0, converter=_convert_delay)
    backoff: float = attrs.field(default=2.0, kw_only=True, converter=_convert_backoff)
    max_delay: float | None = attrs.field(default=None, kw_only=True, converter=_optional_duration)
    jitter: float = attrs.field(default=0.0, kw_only=True, converter=_convert_jitter)
    on: RetryOn = attrs.field(default=Exception, kw_only=True, validator=_check_on)

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt`` (2 for the first retry), jitter included."""
        exponent = attempt - 2
        try:
            base = self.delay * self.backoff**exponent
        except OverflowError:
            base = math.inf
        if self.max_delay is not None:
            base = min(base, self.max_delay)
        if self.jitter:
            base += random.uniform(0.0, self.jitter)  # noqa: S311 - jitter, not cryptography
        return base

    def should_retry(self, error: BaseException) -> bool:
        """Whether *error* may be retried. Never true for anything that is not an ``Exception``."""
        if not isinstance(error, Exception):
            return False
        on = self.on
        if isinstance(on, tuple | type):
            return isinstance(error, on)
        return bool(on(error))


def as_retry(value: Retry | int | None) -> Retry | None:
    """Normalise the ``retry=`` argument: an int ``n`` means ``Retry(attempts=n)``.

    Raises:
        TypeError: *value* is neither ``None``, an int nor a :class:`Retry`.
    """
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Retry(attempts=value)
    msg = f"retry must be a Retry, an int (total attempts) or None, not {type(value).__name__}"
    raise TypeError(msg)
