"""Ctrl-C at the command line: the first one stops gracefully, a second one exits at once (130)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Final, Self, final

import anyio
import anyio.abc
from rich.console import Console

__all__ = ["Interrupts"]

_EXIT_NOW: Final = 130


@final
class Interrupts:
    """While entered, SIGINT (Ctrl-C) is handled here instead of raising ``KeyboardInterrupt``.

    The first one sets :attr:`interrupted` and runs *graceful* (cancel the command's jobs,
    stop a server): the command then ends as usual, prints its summary and returns 130.
    A second one restores the cursor and ends the process at once with status 130,
    whatever is still running (a job that ignores cancellation included).

    Where signals cannot be received (not the main thread, Windows) it does nothing and
    Ctrl-C raises ``KeyboardInterrupt`` as usual (the command line turns it into 130).
    """

    __slots__ = ("_console", "_doing", "_graceful", "_tg", "interrupted")

    def __init__(
        self,
        graceful: Callable[[], Coroutine[object, object, None]],
        console: Console,
        doing: str = "canceling",
    ) -> None:
        self._graceful = graceful
        self._console = console
        self._doing = doing
        self._tg: anyio.abc.TaskGroup | None = None
        #: True once Ctrl-C was pressed.
        self.interrupted = False

    async def __aenter__(self) -> Self:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows, a thread
            await tg.start(self._listen)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg = self._tg
        assert tg is not None  # noqa: S101 - set by __aenter__
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)

    async def _listen(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                if self.interrupted:
                    self._exit_now()
                self.interrupted = True
                self._console.print(
                    f"\n[yellow]Interrupted: {self._doing} (press Ctrl-C again to exit at once)[/]",
                    highlight=False,
                )
                assert self._tg is not None  # noqa: S101 - entered
                self._tg.start_soon(self._graceful)

    def _exit_now(self) -> None:
        self._console.show_cursor(show=True)
        sys.stdout.flush()
        sys.stderr.write("\nanyjob: interrupted again: exiting now\n")
        sys.stderr.flush()
        os._exit(_EXIT_NOW)
