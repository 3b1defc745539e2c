"""Tracked blocks: a block of the caller's own code recorded as a job, in the caller's task."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, NoReturn, final

import anyio

from anyjob._backend import new_cancel_scope
from anyjob._context import Context
from anyjob._exceptions import ManagerClosedError
from anyjob._manager._entry import Entry, Worker
from anyjob._manager._intake import id_in_use
from anyjob._manager._recorder import Recorder
from anyjob._manager._sink import BatchSink, MemorySink
from anyjob._manager._specs import TRACKED_SPEC
from anyjob._records import JobRecord
from anyjob._state import State

__all__ = ["Tracked"]

_SUCCEEDED: Final = State.SUCCEEDED
_FAILED: Final = State.FAILED
_CANCELED: Final = State.CANCELED


@final
class Tracked:
    """``async with jobs.track(...) as ctx``: the block is the job (see ``JobManager.track``).

    Entering stores the job RUNNING and opens a cancel scope around the block (what
    ``jobs.cancel(id)`` cancels); leaving records how the block ended. One object,
    one block: entering it again raises ``RuntimeError``.
    """

    __slots__ = ("_abandon", "_entry", "_record", "_recorder", "_refuse", "_sink", "_used")

    def __init__(
        self,
        record: JobRecord,
        recorder: Recorder,
        sink: MemorySink | BatchSink,
        refuse: Callable[[str], None],
        abandon: Callable[[Entry, str], Awaitable[NoReturn]],
    ) -> None:
        self._record = record
        self._recorder = recorder
        self._sink = sink
        self._refuse = refuse  # raises ManagerClosedError unless the manager is open
        self._abandon = abandon  # records a job the closed manager took CANCELED, then refuses
        self._entry: Entry | None = None
        self._used = False

    def __repr__(self) -> str:
        return f"<Tracked {self._record.id} {self._record.name!r}>"

    async def __aenter__(self) -> Context:
        if self._used:
            msg = "this track() block was entered already: call jobs.track(...) again for another job"
            raise RuntimeError(msg)
        self._used = True
        self._refuse("track a block")
        record = self._record
        recorder = self._recorder
        taken = id_in_use(record.id, recorder.entries, self._sink)
        if taken is not None:
            await self._sink.settle()  # still a checkpoint first
            raise taken
        await self._sink.insert(record)  # a checkpoint first: cancelled, nothing is stored
        entry = self._entry = Entry(recorder, record, TRACKED_SPEC)
        recorder.add(entry)
        try:
            self._refuse("track a block")  # the manager may have begun closing meanwhile
        except ManagerClosedError:
            await self._abandon(entry, "track a block")  # recorded CANCELED, never run; raises
        recorder.tracked += 1  # a closing manager waits for it as for a running job
        worker = Worker()
        scope = worker.scope = new_cancel_scope()
        scope.__enter__()
        try:
            return recorder.start(entry, worker)
        except BaseException:  # a hook raised (Ctrl-C) at job_started: the job is recorded done
            scope.__exit__(None, None, None)
            recorder.tracked -= 1
            recorder.end(entry, _FAILED, None, None)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        entry = self._entry
        assert entry is not None  # noqa: S101 - set by __aenter__
        worker = entry.worker
        assert worker is not None  # noqa: S101 - set by Recorder.start
        scope = worker.scope
        assert scope is not None  # noqa: S101 - set by __aenter__
        self._recorder.tracked -= 1  # first: the end below fires ``drained`` for a closing manager
        try:
            # True: our own cancellation (jobs.cancel) absorbed; trio's scope says True without one too.
            absorbed = bool(scope.__exit__(exc_type, exc, tb)) and exc is not None
        except BaseException as raised:  # the scope turned the error into another
            self._recorder.end(entry, _FAILED if isinstance(raised, Exception) else _CANCELED, raised, None)
            raise
        if exc is None or absorbed:
            self._recorder.end(entry, _CANCELED if absorbed else _SUCCEEDED, None, None)
            return absorbed
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            self._recorder.end(entry, _CANCELED, None, None)  # the caller's scope: recorded, then on its way
        else:
            self._recorder.end(entry, _FAILED, exc, None)  # recorded, then re-raised
        return False
