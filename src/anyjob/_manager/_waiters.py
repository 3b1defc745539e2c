"""Waiters: the ``wait`` and ``as_completed`` calls waiting on jobs, by id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import final

import anyio

from anyjob._records import JobInfo

__all__ = ["Waiter", "Waiters"]


@final
class Waiter:
    """What the calls waiting for one job wait on, and the info the job ended with."""

    __slots__ = ("_event", "_listeners", "final", "users", "woken")

    def __init__(self) -> None:
        self._event: anyio.Event | None = None  # made only when somebody has to wait
        self._listeners: list[Callable[[str], None]] | None = None  # as_completed calls
        self.woken = False
        #: The job's info at its end, kept because the record may be gone by the time
        #: a waiter reads the store again (``retention``, ``cleanup``, another manager).
        self.final: JobInfo | None = None
        self.users = 0  # calls waiting on it now

    def listen(self, listener: Callable[[str], None]) -> None:
        """Also call ``listener(job_id)`` when woken (pair with :meth:`unlisten`)."""
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[str], None]) -> None:
        """Call *listener* no more (nothing happens if it is not listening)."""
        listeners = self._listeners
        if listeners is not None and listener in listeners:
            listeners.remove(listener)

    def set(self, job_id: str = "") -> None:
        """Wake every call waiting, now and later (*job_id*: which job, for the listeners)."""
        self.woken = True
        if self._event is not None:
            self._event.set()
        listeners = self._listeners
        if listeners:
            self._listeners = None
            for listener in listeners:
                listener(job_id)

    @property
    def parked(self) -> bool:
        """Whether a call waits in :meth:`wait` (or did)."""
        return self._event is not None

    async def wait(self) -> None:
        """Until :meth:`set` (at once if it was called already)."""
        if self.woken:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()


@final
class Waiters:
    """Waiters by job id. Invariant: every waiter in ``by_id`` has ``users > 0``.

    ``by_id`` is read (never changed) by the recorder on every job's end: a truth test of
    a dict costs nothing, a ``__bool__`` method a Python call.
    """

    __slots__ = ("by_id",)

    def __init__(self) -> None:
        self.by_id: dict[str, Waiter] = {}

    def __len__(self) -> int:
        return len(self.by_id)

    @property
    def parked(self) -> int:
        """How many of the waited-for ids a call is parked on (past its read, waiting for the end)."""
        return sum(1 for waiter in self.by_id.values() if waiter.parked)

    def __bool__(self) -> bool:
        return bool(self.by_id)

    def join(self, job_id: str) -> Waiter:
        """Wait for *job_id* (pair with :meth:`leave`)."""
        waiter = self.by_id.get(job_id)
        if waiter is None:
            waiter = self.by_id[job_id] = Waiter()
        waiter.users += 1
        return waiter

    def leave(self, job_id: str, waiter: Waiter) -> None:
        """One call stopped waiting (woken, timed out or cancelled)."""
        waiter.users -= 1
        if not waiter.users and self.by_id.get(job_id) is waiter:
            del self.by_id[job_id]

    async def wait_for(
        self,
        job_id: str,
        read: Callable[[str], Awaitable[JobInfo | None]],
        seconds: float,
        *,
        closed: bool,
        read_is_last_await: bool,
    ) -> JobInfo | None:
        """``JobManager.wait``: until *job_id* is done (or *seconds* pass), reading it with *read*.

        With *read_is_last_await* (the read's only await is a checkpoint before it reads),
        nothing can end the job between the read and joining the waiters, so a job found
        done costs no waiter; otherwise the waiter is joined first, so that a job ending
        while the store answers still wakes this call.
        """
        waiter: Waiter | None = None
        if not read_is_last_await:
            waiter = self.join(job_id)
        try:
            info = await read(job_id)
            if info is None or info.state.is_done or closed:
                return info
            if waiter is None:
                waiter = self.join(job_id)
            with anyio.move_on_after(seconds):
                await waiter.wait()
        finally:
            if waiter is not None:
                self.leave(job_id, waiter)
        latest = await read(job_id)
        if latest is not None:
            return latest
        final = None if waiter is None else waiter.final
        return final or info  # deleted meanwhile: the info it ended with

    def wake(self, job_id: str, final: JobInfo | None) -> None:
        """The job ended (*final* is its info, if known): wake every call waiting for it."""
        waiter = self.by_id.pop(job_id, None)
        if waiter is not None:
            waiter.final = final
            waiter.set(job_id)

    def wake_all(self) -> None:
        """The manager closed: nobody waits any longer."""
        by_id = self.by_id
        self.by_id = {}
        for job_id, waiter in by_id.items():
            waiter.set(job_id)
