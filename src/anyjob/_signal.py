"""Signal: a reusable wake-up for one or many waiting tasks."""

from __future__ import annotations

from typing import final

import anyio

__all__ = ["Signal"]


@final
class Signal:
    """Tasks ``await signal.wait()``; ``signal.fire()`` wakes every task waiting now.

    A fire with nobody waiting is not remembered: waiters re-check their
    condition in a loop before waiting, so nothing is missed. The anyio Event
    behind it is made only when somebody waits.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def fire(self) -> None:
        """Wake the tasks waiting now (none: nothing happens)."""
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        """Wait for the next :meth:`fire`."""
        event = self._event
        if event is None:
            event = self._event = anyio.Event()
        await event.wait()
