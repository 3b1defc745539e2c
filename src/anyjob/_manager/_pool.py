"""The worker pool: worker tasks, and the two ways one run happens (in place, through an Executor)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import types
from collections.abc import Awaitable, Generator
from typing import Any, Final, final

import anyio
import anyio.abc
import anyio.lowlevel

from anyjob._checkpoint import Checkpoint
from anyjob._exceptions import StoreError
from anyjob._executor import Executor
from anyjob._job import Job, new_cancel_scope
from anyjob._manager._entry import Entry, Worker
from anyjob._manager._queues import ReadyQueue
from anyjob._manager._recorder import Recorder
from anyjob._manager._sink import Sink
from anyjob._signal import Signal
from anyjob._state import State

__all__ = ["WorkerPool"]

_CREATED: Final = State.CREATED
_SUCCEEDED: Final = State.SUCCEEDED
_FAILED: Final = State.FAILED
_CANCELED: Final = State.CANCELED

#: Idle workers beyond this many exit; more are started when work arrives.
MAX_IDLE_WORKERS: Final = 8
#: Schedule points a worker with nothing to do passes before it idles on an Event: a loop of
#: ``submit`` + ``wait`` (two checkpoints a job) then never idles a worker per job.
SPINS_BEFORE_IDLE: Final = 2
#: Workers started at once for waiting jobs over a durable store (their claims share a batch).
CLAIMS_AT_ONCE: Final = 100
#: A worker whose jobs never yield checkpoints after this many, so other tasks run.
JOBS_PER_CHECKPOINT: Final = 64

#: How a worker's run of jobs ended (see WorkerPool._work).
_STOPPED: Final = "stopped"
_CANCELED_HERE: Final = "canceled"
_CONTEXT_CHANGED: Final = "context changed"


@types.coroutine
def _in_context(context: contextvars.Context, awaitable: Awaitable[Any]) -> Generator[Any, Any, Any]:
    """Await *awaitable* with each of its steps run in *context*: what a task of its own gives.

    For jobs whose function sets context variables, so that they can run in a
    worker without changing its context. Everything the event loop sends or
    throws in (cancellation included) is passed through unchanged.
    """
    steps = awaitable.__await__()
    run = context.run
    send = steps.send
    try:
        yielded = run(send, None)
        while True:
            try:
                received = yield yielded
            except BaseException as exc:  # noqa: BLE001 - handed to the job, whatever it is
                yielded = run(steps.throw, exc)
            else:
                yielded = run(send, received)
    except StopIteration as stop:
        return stop.value


@final
class WorkerPool:
    """Worker tasks that take jobs from the ready queue and run them, at most ``limit`` at once.

    Jobs without retry or timeout run right in the worker (no task, no Job, no scope
    of their own); an Executor runs the others. Counts: ``workers`` alive, ``idle``
    waiting for work, ``starting`` spawned but not yet running, ``executing`` jobs
    being run (or claimed) now.
    """

    __slots__ = (
        "_claims",
        "_closed",
        "_context",
        "_recorder",
        "_sink",
        "_tg",
        "_wakeup",
        "checkpoint",
        "executing",
        "idle",
        "limit",
        "ready",
        "spinning",
        "starting",
        "starts",
        "workers",
    )

    def __init__(self, ready: ReadyQueue, recorder: Recorder, sink: Sink, limit: int | None) -> None:
        self.ready = ready
        self.limit = limit
        self._recorder = recorder
        self._sink = sink
        self._claims = sink.claims
        self._tg: anyio.abc.TaskGroup | None = None
        self._context = contextvars.Context()
        self._closed = False
        self._wakeup = Signal()
        self.checkpoint: Checkpoint = anyio.lowlevel.checkpoint
        self.workers = 0
        self.idle = 0
        self.spinning = 0
        self.starting = 0
        self.executing = 0
        self.starts = 0

    def open(self, tg: anyio.abc.TaskGroup, context: contextvars.Context) -> None:
        """Start workers in *tg*, running jobs in *context* (the manager's, on entering)."""
        self._tg = tg
        self._context = context

    @property
    def is_closed(self) -> bool:
        """True once the manager began closing: no new worker starts."""
        return self._closed

    def close(self) -> None:
        """Start no more workers; idle ones exit."""
        self._closed = True
        self._wakeup.fire()

    @property
    def pending_writes(self) -> int:
        """Jobs whose changes are not yet in the store."""
        return len(self._sink)

    async def drain(self, timeout: float) -> None:
        """Until no job is running or ready to run, for at most *timeout* seconds.

        Tracked blocks (run in their callers' tasks) count as running jobs.
        """
        recorder = self._recorder
        with anyio.move_on_after(timeout):
            while self.ready.size or self.executing or recorder.tracked:
                await recorder.drained.wait()

    def push(self, entry: Entry) -> None:
        """Queue *entry* to start as soon as a worker is free."""
        self.ready.push(entry)
        if self.spinning:
            return  # a worker looks again at its next step (and wakes another if more wait)
        if self.idle:
            self._wakeup.fire()
        elif not self.starting:
            self._spawn()

    def _spawn(self) -> None:
        limit = self.limit
        if (limit is not None and self.workers >= limit) or self._tg is None or self._closed:
            return
        self.workers += 1
        self.starts += 1
        self.starting += 1
        # In the manager's own context, not in the context of whoever submitted just now.
        self._context.run(self._tg.start_soon, self._worker)

    def _next(self) -> Entry | None:
        ready = self.ready
        entries = self._recorder.entries
        while ready.size:
            entry = ready.pop()
            if entry is None:  # pragma: no cover - the queue says there is one
                break
            record = entry.record
            if entry.job is not None or entries.get(record.id) is not entry:
                continue  # canceled while it waited (and forgotten), or started already
            # Another manager sharing the MemoryStore canceled it while it waited, and maybe
            # retried it: then it is that one's to run.
            if record.owner != self._recorder.origin:
                self._recorder.taken_elsewhere(entry)
            elif record.state is not _CREATED:
                self._recorder.canceled_elsewhere(entry)
            else:
                return entry
        return None

    async def _worker(self) -> None:
        self.starting -= 1
        worker = Worker()
        worker.context = contextvars.copy_context()
        outcome: object = _STOPPED
        try:
            while True:
                scope = worker.scope = new_cancel_scope()
                outcome = _CANCELED_HERE  # if the scope swallows a canceled job's cancellation
                with scope:
                    outcome = await self._work(worker, scope)
                if outcome is not _CANCELED_HERE:
                    break
                if contextvars.copy_context() != worker.context:
                    if worker.spec is not None:
                        worker.spec.isolate = True
                    outcome = _CONTEXT_CHANGED
                    break
                # A job this worker ran was canceled: go on in a new scope.
        finally:
            self.workers -= 1
        if outcome is _CONTEXT_CHANGED and self.ready.size:
            self._spawn()  # a fresh worker, in the manager's context, goes on

    async def _work(self, worker: Worker, scope: anyio.CancelScope) -> object:
        """Run jobs until told to stop, a job run in place was canceled, or one changed context variables.

        Jobs start in the context the manager was entered in: a job that sets a context
        variable (``structlog.contextvars``, say) retires its worker, so that nothing it
        set leaks into the next job, and the later jobs of its function each run in a
        context of their own (``_in_context``).
        """
        done_in_a_row = 0
        spins = 0
        while True:
            entry = self._next()
            if entry is None:
                if not await self._await_work(spin=spins < SPINS_BEFORE_IDLE):
                    return _STOPPED
                spins = spins + 1 if spins < SPINS_BEFORE_IDLE else 0
                done_in_a_row = 0
                continue
            spins = 0
            if self.ready.size:  # more wait: if this job blocks, the next one still starts
                self._keep_spare()
            if self._claims and not await self._claim(entry):
                continue
            spec = worker.spec = entry.spec
            self.executing += 1
            if spec.in_place:
                await self._run_in_place(entry, worker)
                if scope.cancel_called:
                    return _CANCELED_HERE  # leave the scope, open a new one
            else:
                await self._execute(entry)
            if contextvars.copy_context() != worker.context:
                spec.isolate = True  # its next jobs run in contexts of their own
                return _CONTEXT_CHANGED
            done_in_a_row += 1
            if done_in_a_row >= JOBS_PER_CHECKPOINT:
                done_in_a_row = 0
                await anyio.lowlevel.checkpoint()

    async def _await_work(self, *, spin: bool) -> bool:
        """No job is ready: wait for one; False when this worker should exit instead."""
        self._recorder.drained.fire()
        if self._closed or self.idle >= MAX_IDLE_WORKERS:
            return False
        if spin:
            # A schedule point instead of idling: a submitter (whose submit and wait are
            # checkpoints too) queues its next job meanwhile, and this worker takes it
            # without the cost of an Event per job.
            self.spinning += 1
            try:
                await self.checkpoint()
            finally:
                self.spinning -= 1
            return True
        self.idle += 1
        try:
            await self._wakeup.wait()
        finally:
            self.idle -= 1
        return True

    def _keep_spare(self) -> None:
        if self.idle:
            self._wakeup.fire()
        elif self._claims:
            # Over a durable store a worker waits for its claim's batch: a worker for each
            # waiting job (up to CLAIMS_AT_ONCE more now) puts their claims in one batch.
            for _ in range(min(self.ready.size - self.starting, CLAIMS_AT_ONCE)):
                self._spawn()
        elif self.workers - self.executing <= 1:
            # No other worker is free (starting, or between two jobs): keep a spare coming.
            self._spawn()

    async def _run_in_place(self, entry: Entry, worker: Worker) -> None:
        """Call the function of *entry* right in this worker: no task, no Job, no scope of its own."""
        recorder = self._recorder
        spec = entry.spec
        try:
            # Inside: a hook may raise a BaseException (Ctrl-C) at job_started, after the
            # record became RUNNING; the job is then recorded done like any other.
            ctx = recorder.start(entry, worker)
            if spec.isolate:
                context = self._context.copy()
                value = await _in_context(context, context.run(spec.fn, ctx))
            else:
                value = await spec.fn(ctx)
        except Exception as exc:  # noqa: BLE001 - recorded, never lost
            self.executing -= 1
            recorder.end(entry, _FAILED, exc, None)
        except BaseException as exc:
            self.executing -= 1
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                # This job was canceled (our scope swallows it), or the manager is closing.
                recorder.end(entry, _CANCELED, None, None)
            else:  # KeyboardInterrupt, SystemExit: recorded, then on their way
                recorder.end(entry, _FAILED, exc, None)
            raise
        else:
            self.executing -= 1
            recorder.end(entry, _SUCCEEDED, None, value)

    async def _claim(self, entry: Entry) -> bool:
        """Over a shared store: take the job only if it still waits (the store decides, atomically)."""
        self.executing += 1  # counted meanwhile: a closing manager waits for the claim
        try:
            claimed = await self._sink.claim(entry)
        finally:
            self.executing -= 1
            self._recorder.drained.fire()
        record = entry.record
        if self._recorder.entries.get(record.id) is not entry or record.state is not _CREATED:
            return False  # canceled here while claiming
        if not claimed:
            # Canceled elsewhere, or canceled and retried there (then it is that one's):
            # the store's record tells which.
            try:
                stored = await self._sink.record(record.id)
            except StoreError:  # unreadable now: not this manager's to run; the feed tells the rest
                self._recorder.taken_elsewhere(entry)
            else:
                self._recorder.claim_refused(entry, stored)
        return claimed

    async def _execute(self, entry: Entry) -> None:
        """Run a job with retry or timeout through an Executor (``executing`` counted by the caller)."""
        spec = entry.spec
        record = entry.record
        recorder = self._recorder
        job: Job[Any] = Job(spec.fn, id=record.id, name=record.name)
        job._labels = record.labels  # validated and copied at submit already
        job._listener = functools.partial(recorder.job_changed, entry)
        entry.job = job
        executor = entry.executor = Executor(job, retry=spec.retry, timeout=spec.timeout)
        try:
            with contextlib.suppress(Exception):  # recorded from the job in finish()
                if spec.isolate:
                    context = self._context.copy()
                    await _in_context(context, context.run(executor.start, record.params))
                else:
                    await executor.start(record.params)
        finally:
            job._listener = None
            self.executing -= 1
            recorder.finish(entry, job)
