"""``as_completed``: many jobs waited for at once, each yielded as it finishes."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Container, Iterable
from typing import Self, final

import anyio
import anyio.lowlevel

from anyjob._checkpoint import Checkpoint
from anyjob._exceptions import JobNotFoundError
from anyjob._limits import check_id
from anyjob._manager._sink import Sink
from anyjob._manager._waiters import Waiter, Waiters
from anyjob._records import JobInfo
from anyjob._signal import Signal

__all__ = ["AsCompleted", "check_ids"]


def check_ids(ids: Iterable[str]) -> list[str]:
    """The ids given to ``as_completed``, validated: each a valid id, none twice.

    Raises:
        TypeError: *ids* is a str (not an iterable of ids) or not iterable, or an id is not a str.
        ValueError: An invalid id, or an id given twice.
    """
    if isinstance(ids, str | bytes):
        msg = "ids must be an iterable of job ids, not a single str (wrap it in a list)"
        raise TypeError(msg)
    try:
        items = list(ids)
    except TypeError:
        msg = f"ids must be an iterable of job ids, not {type(ids).__name__}"
        raise TypeError(msg) from None
    checked = [check_id(item) for item in items]
    seen: set[str] = set()
    for job_id in checked:
        if job_id in seen:
            msg = f"job id {job_id!r} is given twice: as_completed yields one info per job"
            raise ValueError(msg)
        seen.add(job_id)
    return checked


@final
class AsCompleted:
    """An async iterator of :class:`~anyjob.JobInfo`, one per id, in the order the jobs finish.

    From ``JobManager.as_completed``. The first ``__anext__`` joins a waiter for every
    id, then reads the jobs this manager does not run (``JobNotFoundError`` for an
    unknown id, before anything is yielded); finished ones come first, in the order
    given, then each job as it ends. Every step is a checkpoint. ``TimeoutError`` when
    *timeout* (seconds, from the first step) passes first. The waiters are released
    when it is exhausted, fails, is closed with :meth:`aclose`, or is garbage-collected.
    """

    __slots__ = (
        "__weakref__",
        "_checkpoint",
        "_closed",
        "_deadline",
        "_ended",
        "_ids",
        "_joined",
        "_live",
        "_ready",
        "_seconds",
        "_sink",
        "_started",
        "_waiters",
        "_wakeup",
        "_woken",
    )

    def __init__(
        self,
        ids: list[str],
        seconds: float,
        *,
        waiters: Waiters,
        sink: Sink,
        live: Container[str],
        closed: Callable[[], bool],
        checkpoint: Checkpoint,
    ) -> None:
        self._checkpoint = checkpoint
        self._ids = ids
        self._live = live
        self._seconds = seconds
        self._waiters = waiters
        self._sink = sink
        self._closed = closed
        self._deadline = math.inf
        self._started = False
        self._joined: dict[str, Waiter] = {}  # still waited for
        self._ended: deque[str] = deque()  # woken, in the order they were woken
        self._ready: deque[JobInfo] = deque()  # found finished, to yield next
        self._wakeup = Signal()
        self._woken = self._listener(self._ended, self._wakeup)

    def __aiter__(self) -> Self:
        return self

    def __del__(self) -> None:
        self._release()

    async def aclose(self) -> None:
        """Stop waiting (the iterator then ends); a checkpoint."""
        self._release()
        self._ids = []
        self._ready.clear()
        self._ended.clear()  # the same deque the listener holds
        await anyio.lowlevel.checkpoint()

    def _release(self) -> None:
        joined = self._joined
        if joined:
            self._joined = {}
            for job_id, waiter in joined.items():
                self._leave(job_id, waiter)

    @staticmethod
    def _listener(ended: deque[str], wakeup: Signal) -> Callable[[str], None]:
        """What the waiters call: it holds no reference to the iterator.

        So an iterator left unfinished is garbage, and its ``__del__`` releases the waiters.
        """

        def woken(job_id: str) -> None:
            ended.append(job_id)
            wakeup.fire()

        return woken

    async def __anext__(self) -> JobInfo:
        try:
            if not self._started:
                self._started = True
                self._deadline = anyio.current_time() + self._seconds
                await self._start()
            else:
                await self._checkpoint()
            if self._ready:
                return self._ready.popleft()
            while True:
                info = await self._next_ended()
                if info is not None:
                    return info
        except BaseException:
            self._release()
            raise

    async def _start(self) -> None:
        """Read every job once; wait for those not finished (unknown ones raise)."""
        sink = self._sink
        ids = self._ids
        get_now = sink.get_now
        live = self._live
        infos: list[JobInfo | None]
        if get_now is None:
            for job_id in ids:  # first: a job ending while the store answers still wakes it
                self._join(job_id)
            infos = await sink.get_many(ids)
        else:  # one checkpoint, then nothing else runs: jobs live here need no read
            await sink.settle()
            infos = [None if job_id in live else get_now(job_id) for job_id in ids]
        unknown = [
            job_id
            for job_id, info in zip(ids, infos, strict=True)
            if info is None and job_id not in self._live
        ]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            msg = f"no job with id {unknown[0]!r}{more}"
            raise JobNotFoundError(msg, job_id=unknown[0])
        closed = self._closed()
        joined = self._joined
        for job_id, info in zip(ids, infos, strict=True):
            if info is not None and (info.state.is_done or closed):
                if job_id in joined:
                    self._leave(job_id, joined.pop(job_id))
                self._ready.append(info)
            elif job_id not in joined:
                self._join(job_id)

    def _join(self, job_id: str) -> None:
        waiter = self._waiters.join(job_id)
        waiter.listen(self._woken)
        self._joined[job_id] = waiter

    def _leave(self, job_id: str, waiter: Waiter) -> None:
        waiter.unlisten(self._woken)
        self._waiters.leave(job_id, waiter)

    async def _next_ended(self) -> JobInfo | None:
        """The info of the next job that ended (None: woken for one already taken)."""
        if not self._joined and not self._ended:
            raise StopAsyncIteration
        if not self._ended:
            remaining = self._deadline - anyio.current_time()
            if remaining <= 0:
                self._timed_out()
            with anyio.move_on_after(remaining):
                await self._wakeup.wait()
            if not self._ended:
                self._timed_out()
        job_id = self._ended.popleft()
        waiter = self._joined.pop(job_id, None)
        if waiter is None:
            return None
        self._leave(job_id, waiter)
        final = waiter.final
        if final is not None:
            return final
        # Woken without the info (the manager closed, or a deletion the store told nothing of).
        info = await self._sink.get(job_id)
        if info is None:
            msg = f"job {job_id!r} was deleted before its end could be read"
            raise JobNotFoundError(msg, job_id=job_id)
        return info

    def _timed_out(self) -> None:
        pending = len(self._joined)
        msg = f"as_completed timed out after {self._seconds:g} s with {pending} job(s) not finished"
        raise TimeoutError(msg)
