"""Control: cancel, retry and delete of jobs by id, whichever manager sharing the store runs them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, final

from anyjob._exceptions import JobNotFoundError, JobStateError
from anyjob._kinds import EXTERNAL, TRACKED
from anyjob._manager._entry import Entry
from anyjob._manager._external import Reports
from anyjob._manager._recorder import Recorder
from anyjob._manager._sink import BatchSink, MemorySink
from anyjob._manager._specs import SpecRegistry
from anyjob._manager._waiters import Waiters
from anyjob._records import JobRef
from anyjob._state import State
from anyjob.stores._base import Store

__all__ = ["Control"]

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_RETRYABLE: Final = frozenset({State.FAILED, State.CANCELED})


def _not_found(job_id: str) -> JobNotFoundError:
    return JobNotFoundError(f"no job with id {job_id!r}", job_id=job_id)


@final
class Control:
    """What ``cancel``, ``retry`` and ``delete`` do once the manager checked the id and its phase.

    It holds no state of its own: the recorder decides what a live job's change means,
    the store what another manager's job's does.
    """

    __slots__ = ("_origin", "_recorder", "_registry", "_reports", "_sink", "_store", "_waiters")

    def __init__(  # noqa: PLR0917 - the parts it coordinates, each its own owner
        self,
        origin: str,
        store: Store,
        sink: MemorySink | BatchSink,
        recorder: Recorder,
        registry: SpecRegistry,
        waiters: Waiters,
        reports: Reports,
    ) -> None:
        self._origin = origin
        self._store = store
        self._sink = sink
        self._recorder = recorder
        self._registry = registry
        self._waiters = waiters
        self._reports = reports

    async def cancel(self, job_id: str) -> bool:
        """``JobManager.cancel``: True when this call canceled the job (from any manager)."""
        await self._sink.settle()
        entry = self._recorder.entries.get(job_id)
        if entry is not None and not self._sink.claims:
            if entry.record.owner == self._origin:
                return self._recorder.cancel(entry)  # the record is the store's own: it tells
            self._recorder.taken_elsewhere(entry)  # another manager took it over: the store decides
        # The store decides (another manager may have canceled it, even one of ours).
        before = await self._store.request_cancel(job_id, origin=self._origin)
        if before is None:
            raise _not_found(job_id)
        entry = self._recorder.entries.get(job_id)
        if entry is not None:
            self._recorder.cancel_stored(entry, before)
        elif before is _CREATED or before is _RUNNING:
            if before is _CREATED:
                self._waiters.wake(job_id, None)  # it is CANCELED in the store now
            await self._reports.canceled(job_id)  # an external job: who listens here learns it
        return before is _CREATED or before is _RUNNING

    async def retry(self, job_id: str) -> tuple[JobRef, Entry | None]:
        """``JobManager.retry``: requeue a FAILED or CANCELED job here; its ref and new entry.

        The entry is live and not yet queued: the caller queues it (or, when the manager
        closed meanwhile, abandons it). An external job has none: it waits for its reporter.
        """
        record = await self._sink.record(job_id)
        if record is None:
            raise _not_found(job_id)
        if record.state not in _RETRYABLE:
            msg = (
                f"cannot retry job {record.name!r} ({job_id}): it is {record.state.value}, "
                "not failed or canceled"
            )
            raise JobStateError(msg, job_id=job_id)
        if record.function == TRACKED:
            msg = f"cannot retry job {record.name!r} ({job_id}): a tracked block cannot run again"
            raise JobStateError(msg, job_id=job_id)
        # An external job waits for its reporter again (no spec, no entry); any other runs here.
        spec = None if record.owner == EXTERNAL else self._registry.for_retry(record)
        if job_id in self._recorder.entries or self._sink.busy(job_id):
            # Retried here meanwhile (a cancelled requeue withdraws what it may have written).
            msg = f"cannot retry job {record.name!r} ({job_id}): it is being retried"
            raise JobStateError(msg, job_id=job_id)
        if spec is None:
            fields = self._reports.requeue_fields(record)
        else:
            fields = self._recorder.requeue_fields(self._origin)
        if not await self._sink.requeue(job_id, fields, _RETRYABLE):
            msg = f"cannot retry job {record.name!r} ({job_id}): it changed meanwhile"
            raise JobStateError(msg, job_id=job_id)
        ref = JobRef(job_id, record.name, datetime.fromtimestamp(fields["scheduled"], UTC))
        if spec is None:
            self._reports.requeued(record, fields)
            return ref, None
        return ref, self._recorder.requeued(record, spec, fields)

    async def delete(self, job_id: str) -> None:
        """``JobManager.delete``: delete one finished job of any manager sharing the store."""
        await self._sink.settle()
        entry = self._recorder.entries.get(job_id)
        if entry is not None:
            state: State | None = entry.record.state
        else:
            state = await self._store.delete(job_id, origin=self._origin)
        if state is None:
            raise _not_found(job_id)
        if not state.is_done:
            msg = f"cannot delete job {job_id!r}: it is {state.value}, not done (cancel it first)"
            raise JobStateError(msg, job_id=job_id)
