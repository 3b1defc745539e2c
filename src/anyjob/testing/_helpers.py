"""The testing helpers (re-exported by :mod:`anyjob.testing`)."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from types import TracebackType
from typing import final

from anyjob._executor import TestingMode, set_testing_mode, testing_mode
from anyjob.instrumentation import HookEvent, get_hooks, set_hooks

__all__ = ["TestingMode", "capture_events", "get_testing", "set_testing"]


@final
class _Restore:
    """Returned by :func:`set_testing`; restores the previous mode when used as a context manager."""

    __slots__ = ("_previous",)

    def __init__(self, previous: TestingMode) -> None:
        self._previous = previous

    def __enter__(self) -> TestingMode:
        return testing_mode()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        set_testing_mode(self._previous)


def set_testing(testing: bool = True, *, attempts: int | None = None) -> _Restore:  # noqa: FBT001, FBT002
    """Switch testing mode on or off, at once and for the whole process.

    In testing mode executors do not wait between attempts and ignore cooldowns.

    Args:
        testing: True to switch testing mode on, False to switch it off.
        attempts: When set, caps every retry policy at this many tries
            (``attempts=1``: no retries at all).

    Returns:
        An object that, used as a context manager, restores the previous mode on exit::

            with anyjob.testing.set_testing(True, attempts=2):
                ...

    Raises:
        ValueError: *attempts* is below 1.
        TypeError: *attempts* is not an int.
    """
    if attempts is not None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            msg = f"attempts must be an int or None, not {type(attempts).__name__}"
            raise TypeError(msg)
        if attempts < 1:
            msg = f"attempts must be >= 1, got {attempts}"
            raise ValueError(msg)
    previous = set_testing_mode(TestingMode(enabled=bool(testing), attempts=attempts if testing else None))
    return _Restore(previous)


def get_testing() -> TestingMode:
    """The current testing mode."""
    return testing_mode()


@contextmanager
def capture_events(*, keep_hooks: bool = False) -> Generator[list[HookEvent]]:
    """Record every instrumentation event in a list while the block runs.

    Args:
        keep_hooks: Also keep calling the hooks that were active (by default they
            are replaced, which also silences the default logging).

    Yields:
        The list the events are appended to, in the order they were emitted.
    """
    events: list[HookEvent] = []
    previous = get_hooks()
    set_hooks([*previous, events.append] if keep_hooks else [events.append])
    try:
        yield events
    finally:
        set_hooks(previous)
