"""JobManager: many jobs by id — scheduling, tracking in a store, events, retention."""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import heapq
import math
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self, final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
import structlog

from anyjob._events import EventStream
from anyjob._exceptions import JobError, JobNotFoundError, JobStateError
from anyjob._executor import Executor
from anyjob._ids import new_id
from anyjob._job import Context, Job, check_labels, error_text, new_cancel_scope
from anyjob._records import (
    JobEvent,
    JobInfo,
    JobRecord,
    JobRef,
    JobStatistics,
    check_json_safe,
    from_timestamp,
    now_timestamp,
)
from anyjob._retry import Retry, as_retry
from anyjob._signal import Signal
from anyjob._state import State
from anyjob._time import ensure_aware, to_seconds, utcnow
from anyjob.instrumentation import _hooks
from anyjob.stores._base import JobQuery, RecordUpdate, Store, StoreChange
from anyjob.stores._memory import MemoryStore

__all__ = ["JobManager"]

_logger = structlog.get_logger("anyjob")

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELING: Final = State.CANCELING
_SUCCEEDED: Final = State.SUCCEEDED
_FAILED: Final = State.FAILED
_CANCELED: Final = State.CANCELED
_RETRYABLE: Final = frozenset({_FAILED, _CANCELED})
_CLAIMABLE: Final = frozenset({_CREATED})
_MAX_LIMIT: Final = 1000
#: Idle workers beyond this many exit; more are started when work arrives.
_MAX_IDLE_WORKERS: Final = 8
#: A worker whose jobs never yield checkpoints after this many, so other tasks run.
_JOBS_PER_CHECKPOINT: Final = 64
#: Functions (with their policies) remembered for ``retry`` of jobs whose function was not
#: registered; past this many the least recently used are forgotten (register to be safe).
_MAX_LOCAL_SPECS: Final = 10_000
#: Distinct label sets shared between jobs (beyond this, each job keeps its own copy).
_MAX_INTERNED_LABELS: Final = 4096

JobFunction = Callable[[Context], Awaitable[Any]]

_NOTHING: Final = object()
_NO_LABELS: Final = check_labels(None)

#: What a worker's run of jobs ended with (see JobManager._work).
_STOPPED: Final = "stopped"
_CANCELED_HERE: Final = "canceled"
_CONTEXT_CHANGED: Final = "context changed"

#: Makes the store of a manager given none (tests swap it to exercise the protocol path).
_default_store: Callable[[], Store] = MemoryStore


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
@attrs.frozen
class ManagerStatistics:
    """A frozen snapshot of a manager's internals, for tests and debugging (not public API).

    Attributes:
        phase: ``"new"``, ``"open"``, ``"closing"`` or ``"closed"``.
        live: Jobs this manager owns that are not done (waiting, scheduled or executing).
        ready: Jobs waiting for a worker.
        delayed: Jobs scheduled for later.
        executing: Jobs a worker is running now.
        workers: Worker tasks alive now.
        idle_workers: Workers waiting for work.
        worker_starts: Worker tasks started since the manager was built.
        waiters: Job ids some ``wait`` call waits on.
        streams: Open ``events()`` subscriptions.
        specs: Function specs remembered for submissions by function.
        local_specs: Specs of unregistered functions remembered for ``retry``.
        pending_writes: Jobs whose changes are not yet written to the store.
    """

    phase: str
    live: int
    ready: int
    delayed: int
    executing: int
    workers: int
    idle_workers: int
    worker_starts: int
    waiters: int
    streams: int
    specs: int
    local_specs: int
    pending_writes: int


@final
class _Spec:
    """What to run: the function and its policies, shared by every job that uses them."""

    __slots__ = ("default_name", "fn", "isolate", "key", "registered", "retry", "timeout")

    def __init__(
        self,
        key: str,
        fn: JobFunction,
        retry: Retry | None,
        timeout: float | None,
        *,
        registered: bool = False,
    ) -> None:
        self.key = key
        self.fn = fn
        self.retry = retry
        self.timeout = timeout
        self.registered = registered
        #: Its jobs set context variables: each runs in a context of its own (see _in_context)
        #: instead of retiring the worker it ran in. Learned from the first such job.
        self.isolate = False
        #: The job name when none is given: the registered name, else the function's.
        self.default_name: str = (
            key if registered else (getattr(fn, "__qualname__", None) or type(fn).__qualname__)
        )


async def _never_run(ctx: Context) -> None:  # noqa: ARG001  # pragma: no cover - the function of _NO_SPEC
    raise AssertionError


#: What ``_last_spec`` holds before any submission (``_last_fn`` then matches no function).
_NO_SPEC: Final = _Spec("", _never_run, None, None)


@final
class _Entry:
    """A job this manager owns and has not finished: waiting, scheduled or executing.

    Its record holds the job's data. With a MemoryStore the record is the very
    object the store keeps (written in place, re-indexed on state changes);
    with other stores it is a local copy, written to the store in batches.

    A job without retry or timeout runs right in a worker, with no
    :class:`~anyjob.Job` around it: the entry is then what its
    :class:`~anyjob.Context` reports to (see :class:`~anyjob._job.Reporter`).
    """

    __slots__ = (
        "_live_run",
        "_result",
        "cancel_requested",
        "due",
        "executor",
        "flushed_state",
        "job",
        "job_state",
        "manager",
        "record",
        "spec",
        "t0",
        "worker",
    )

    _base_logger: Any = _logger

    def __init__(self, manager: JobManager, record: JobRecord, spec: _Spec, flushed_state: State) -> None:
        self.manager = manager
        self.record = record
        self.spec = spec
        self.flushed_state = flushed_state  # the state the store has indexed
        self.job: Job[Any] | None = None
        self.executor: Executor[Any] | None = None
        self.worker: _Worker | None = None  # running it in place, without a Job
        self.job_state = _CREATED
        self.due: float | None = None
        self.cancel_requested = False
        self._live_run = 0
        self._result: Any = None
        self.t0 = 0.0

    # -- what a Context needs (jobs run in place) ------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.record.labels

    @property
    def params(self) -> Any:
        return self.record.params

    def _report(self, progress: float, message: str | None) -> None:
        record = self.record
        record.progress = progress
        if message is not None:
            record.message = message
        manager = self.manager
        manager._changed(self)
        if manager._streams:
            manager._publish(record, progress=True)


@final
class _Worker:
    """One worker task: the cancel scope the jobs it runs in place execute in.

    Canceling such a job cancels this scope; the worker then leaves it and
    opens a new one. A scope per worker instead of one per job is most of
    what makes a tracked job cheaper than a bare task.
    """

    __slots__ = ("context", "scope", "spec")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.context: contextvars.Context | None = None  # its context variables before the first job
        self.spec: _Spec | None = None  # of the job it runs or ran last


_RUN_FIELDS: Final = (
    "state",
    "progress",
    "message",
    "result",
    "error",
    "error_type",
    "attempts",
    "started",
    "ended",
)


def _run_fields(record: JobRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _RUN_FIELDS}


@final
class _Waiter:
    """What ``wait`` calls for one job wait on, and the info the job ended with."""

    __slots__ = ("event", "final", "users")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.final: JobInfo | None = None
        self.users = 0  # wait calls waiting on it now


@final
class _ReadyQueue:
    """Jobs ready to start: higher priority first, first in first out within one priority.

    One deque per priority in use: pushing and popping are O(1) for the usual few
    priorities, with no tuple per job as a heap would need.
    """

    __slots__ = ("_levels", "_order", "_size")

    def __init__(self) -> None:
        self._levels: dict[int, deque[_Entry]] = {}
        self._order: list[int] = []  # the priorities in use, highest first (as negatives, ascending)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, entry: _Entry) -> None:
        priority = entry.record.priority
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = deque()
            bisect.insort(self._order, -priority)
        level.append(entry)
        self._size += 1

    def pop(self) -> _Entry | None:
        if not self._size:
            return None
        for negative in self._order:
            level = self._levels[-negative]
            if level:
                self._size -= 1
                entry = level.popleft()
                if not level and len(self._levels) > 1:  # forget priorities no longer in use
                    del self._levels[-negative]
                    self._order.remove(negative)
                return entry
        return None  # pragma: no cover - _size says there is one


def _check_id(job_id: object) -> str:
    if not isinstance(job_id, str):
        msg = f"job id must be a str, not {type(job_id).__name__}"
        raise TypeError(msg)
    return job_id


def _check_new_id(job_id: object) -> str:
    checked = _check_id(job_id)
    if not checked:
        msg = "job id must not be empty"
        raise ValueError(msg)
    return checked


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        msg = f"job name must be a non-empty str, not {name!r}"
        raise TypeError(msg)
    return name


def _wait_before_start(delay: float | timedelta | None, at: datetime | None, now: float) -> float:
    """Seconds from *now* until a job with this ``delay`` or ``at`` may start."""
    if delay is not None:
        if at is not None:
            msg = "give either delay or at, not both"
            raise ValueError(msg)
        return to_seconds(delay, "delay")
    return max(ensure_aware(at, "at").timestamp() - now, 0.0)


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an int, not {type(value).__name__}"
        raise TypeError(msg)
    return value


def _check_states(state: State | Iterable[State] | None) -> frozenset[State] | None:
    if state is None:
        return None
    if isinstance(state, State):
        return frozenset((state,))
    if isinstance(state, str) or not isinstance(state, Iterable):
        msg = f"state must be a State or several, not {state!r}"
        raise TypeError(msg)
    states = frozenset(state)
    for item in states:
        if not isinstance(item, State):
            msg = f"state must be a State or several, got {item!r}"
            raise TypeError(msg)
    return states


def _qualname(error: BaseException) -> str:
    """The error's qualified type name (``type(error).__qualname__``), as ``JobInfo.error_type``."""
    return type(error).__qualname__


@final
class JobManager:
    """Tracks many jobs by id: submit, status, wait, list, stats, cancel, retry, cleanup, events.

    Use it as an async context manager. Jobs run in worker tasks the manager
    owns, at most ``max_concurrency`` at a time, higher ``priority`` first and
    in submission order within one priority, each when its ``delay``/``at`` has
    come. Every change is written to the store (coalesced) and published to
    :meth:`events` subscribers.

    Jobs start in the context (``contextvars``) the manager was entered in, not
    in the submitter's; context variables one job sets never reach another.

    Leaving the ``async with`` stops accepting submissions, lets running and
    due jobs finish within ``shutdown_timeout``, then cancels the rest and
    records them ``CANCELED``: no record is lost.

    Args:
        store: Where records are kept; a new :class:`~anyjob.stores.MemoryStore` by default.
            Several managers may share one store.
        max_concurrency: At most this many jobs execute at once (``None``: no limit).
        retention: Finished jobs are deleted automatically this long after they end.
        shutdown_timeout: How long leaving the context waits for jobs before canceling them.

    Raises:
        TypeError, ValueError: An invalid argument.
    """

    def __init__(
        self,
        store: Store | None = None,
        max_concurrency: int | None = None,
        retention: float | timedelta | None = None,
        shutdown_timeout: float | timedelta = 10.0,
    ) -> None:
        if store is None:
            store = _default_store()
        elif not isinstance(store, Store):
            msg = f"store must implement anyjob.stores.Store, not {type(store).__name__}"
            raise TypeError(msg)
        if max_concurrency is not None:
            _check_int(max_concurrency, "max_concurrency")
            if max_concurrency < 1:
                msg = f"max_concurrency must be >= 1 (or None for no limit), got {max_concurrency}"
                raise ValueError(msg)
        self._store: Store = store
        self._memory = store if type(store) is MemoryStore else None
        self._max_concurrency = max_concurrency
        self._retention = None if retention is None else to_seconds(retention, "retention")
        self._shutdown_timeout = to_seconds(shutdown_timeout, "shutdown_timeout", allow_inf=True)
        self._origin = new_id()
        self._registry: dict[str, _Spec] = {}
        self._specs: dict[tuple[Any, ...], _Spec] = {}
        self._local_specs: dict[str, _Spec] = {}
        self._local_count = 0
        self._last_fn: object = _NOTHING  # never a function: submit(None) must not match it
        self._last_spec: _Spec = _NO_SPEC
        self._labels_cache: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
        self._entries: dict[str, _Entry] = {}
        self._ready = _ReadyQueue()
        self._delayed: list[tuple[float, int, _Entry]] = []
        self._seq = 0
        self._dirty: dict[str, _Entry] = {}
        self._flush_wakeup = Signal()
        self._flush_lock: anyio.Lock | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._streams: list[EventStream] = []
        self._tg: anyio.abc.TaskGroup | None = None
        self._state = "new"
        self._workers = 0
        self._executing = 0  # jobs a worker is running now
        self._idle = 0
        self._starting = 0
        self._work_wakeup = Signal()
        self._schedule_wakeup = Signal()
        self._drained = Signal()
        self._context = contextvars.Context()  # the context jobs start in (set on entering)
        self._worker_starts = 0

    def __repr__(self) -> str:
        return f"<JobManager {self._state} jobs={len(self._entries)} store={self._store!r}>"

    def _statistics(self) -> ManagerStatistics:
        """A frozen snapshot of this manager's internals (for tests; not public API)."""
        return ManagerStatistics(
            phase=self._state,
            live=len(self._entries),
            ready=len(self._ready),
            delayed=sum(
                1 for _, _, e in self._delayed if e.due is not None and self._entries.get(e.record.id) is e
            ),
            executing=self._executing,
            workers=self._workers,
            idle_workers=self._idle,
            worker_starts=self._worker_starts,
            waiters=len(self._waiters),
            streams=len(self._streams),
            specs=len(self._specs),
            local_specs=len(self._local_specs),
            pending_writes=len(self._dirty),
        )

    @property
    def store(self) -> Store:
        """The store the records are kept in."""
        return self._store

    @property
    def max_concurrency(self) -> int | None:
        """At most this many jobs execute at once, or ``None``."""
        return self._max_concurrency

    @property
    def is_open(self) -> bool:
        """True between entering and leaving the ``async with`` (submissions are accepted)."""
        return self._state == "open"

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            msg = "a JobManager can be entered only once"
            raise JobError(msg)
        self._flush_lock = anyio.Lock()
        self._context = contextvars.copy_context()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._state = "open"
        feed = self._store.subscribe(self._origin)
        tg.start_soon(self._flusher)
        tg.start_soon(self._scheduler)
        tg.start_soon(self._follow, feed)
        if self._retention is not None:
            tg.start_soon(self._retain, self._retention)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None  # noqa: S101 - set by __aenter__
        self._state = "closing"
        try:
            if exc is None or isinstance(exc, Exception):
                with anyio.move_on_after(self._shutdown_timeout):
                    await self._wait_drained()
            with anyio.CancelScope(shield=True):
                for entry in list(self._entries.values()):
                    self._cancel_entry(entry)
                # Jobs get the same time again to unwind; one that ignores cancellation
                # past that is cancelled from outside (and still recorded CANCELED).
                with anyio.move_on_after(self._shutdown_timeout):
                    await self._wait_all_done()
        finally:
            self._state = "closed"
            tg.cancel_scope.cancel()
            try:
                # The body's own exception (or cancellation) propagates as it is, not
                # wrapped in the internal task group's exception group.
                await tg.__aexit__(None, None, None)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._flush()
                for stream in self._streams:
                    stream.end()
                self._streams.clear()
                for waiter in self._waiters.values():
                    waiter.event.set()
                self._waiters.clear()
        return None

    async def _wait_drained(self) -> None:
        """Until nothing is running and nothing is due (delayed jobs not yet due do not count)."""
        while self._ready or self._executing:
            await self._drained.wait()

    async def _wait_all_done(self) -> None:
        while self._entries:
            await self._drained.wait()

    def _check_open(self, action: str) -> None:
        if self._state != "open":
            if self._state == "new":
                msg = (
                    f"cannot {action}: the JobManager is not started (use 'async with JobManager() as jobs')"
                )
            else:
                msg = f"cannot {action}: the JobManager is closed"
            raise JobError(msg)

    # -- registering and submitting ------------------------------------------------

    def register(self, fn: JobFunction, name: str | None = None) -> JobFunction:
        """Register ``async def fn(ctx)`` under *name* so jobs can be submitted by name.

        Needed for durable stores and for ``retry`` after a restart. Returns *fn*,
        so it also works as a decorator.

        Raises:
            TypeError: *fn* is not callable or *name* is not a str.
            ValueError: Another function is registered under *name*.
        """
        if not callable(fn):
            msg = f"register() needs an async function, not {type(fn).__name__}"
            raise TypeError(msg)
        if name is None:
            key = self._default_name(fn)
        elif isinstance(name, str) and name:
            key = name
        else:
            msg = f"a registered name must be a non-empty str, not {name!r}"
            raise TypeError(msg)
        current = self._registry.get(key)
        if current is not None and current.fn is not fn:
            msg = f"another function is already registered as {key!r}"
            raise ValueError(msg)
        self._registry[key] = _Spec(key, fn, None, None, registered=True)
        self._specs.clear()  # a function registered now is named by its registration from now on
        self._last_fn = _NOTHING
        self._last_spec = _NO_SPEC
        return fn

    def _spec_for(self, fn: JobFunction | str, retry: Retry | None, timeout: float | None) -> _Spec:
        if isinstance(fn, str):
            registered = self._registry.get(fn)
            if registered is None:
                msg = f"no function is registered as {fn!r}; register it first with jobs.register(fn, name)"
                raise ValueError(msg)
            if retry is None and timeout is None:
                return registered
            fn = registered.fn
        elif not callable(fn):
            msg = f"fn must be an async function taking a Context (or a registered name), not {fn!r}"
            raise TypeError(msg)
        key: tuple[Any, ...] | None = (fn, retry, timeout)
        try:
            hash(key)
        except TypeError:  # an unhashable callable: nothing to share
            key = None
        spec = None if key is None else self._specs.pop(key, None)  # re-inserted: most recent last
        if spec is None:
            registered_name = next((n for n, s in self._registry.items() if s.fn is fn), None)
            if registered_name is not None and retry is None and timeout is None:
                spec = self._registry[registered_name]
            else:
                self._local_count += 1
                spec = _Spec(f"local:{self._origin}:{self._local_count}", fn, retry, timeout)
        self._remember(spec, key)
        if retry is None and timeout is None:
            self._last_fn = fn
            self._last_spec = spec
        return spec

    def _remember(self, spec: _Spec, key: tuple[Any, ...] | None) -> None:
        """Keep *spec* for ``retry`` of finished jobs, most recently used last, within a bound.

        Fresh closures or partials per submission must not grow memory forever; a
        job whose function was forgotten can still be retried once it is registered.
        """
        if spec.key not in self._registry:
            local = self._local_specs
            local.pop(spec.key, None)
            local[spec.key] = spec
            if len(local) > _MAX_LOCAL_SPECS:
                del local[next(iter(local))]
        if key is not None:
            specs = self._specs
            specs[key] = spec
            if len(specs) > _MAX_LOCAL_SPECS:
                del specs[next(iter(specs))]

    async def submit(
        self,
        fn: JobFunction | str,
        params: Any = None,
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        id: str | None = None,  # noqa: A002 - the contract's name
        priority: int = 0,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        retry: Retry | int | None = None,
        timeout: float | timedelta | None = None,
    ) -> JobRef:
        """Accept a job and return its :class:`~anyjob.JobRef` at once.

        Args:
            fn: ``async def fn(ctx)``, or the name it was registered under.
            params: JSON-safe data, copied; the function sees it as ``ctx.params``.
            name: The job's name; by default the registered name or ``fn.__qualname__``.
            labels: ``str -> str`` pairs to filter by.
            id: The job's id; by default a new UUIDv7 string.
            priority: Higher starts first among waiting jobs (FIFO within one priority).
            delay: Start no earlier than this long from now.
            at: Start no earlier than this timezone-aware time.
            retry: A :class:`~anyjob.Retry` or an int (attempts); runs through an Executor.
            timeout: Per-attempt timeout; runs through an Executor.

        Raises:
            JobError: The manager is not open, or a job with that id exists.
            TypeError, ValueError: Invalid arguments; nothing is stored.
        """
        if self._state != "open":
            self._check_open("submit")
        if fn is self._last_fn and retry is None and timeout is None:
            spec = self._last_spec  # the same function again: the common case of a loop of submits
        else:
            timeout_s = None if timeout is None else to_seconds(timeout, "timeout", allow_inf=True)
            spec = self._spec_for(fn, as_retry(retry), timeout_s)
        name = spec.default_name if name is None else _check_name(name)
        if priority != 0:
            _check_int(priority, "priority")
        now = time.time_ns() // 1000 / 1e6  # now_timestamp(), inline
        wait = 0.0 if delay is None and at is None else _wait_before_start(delay, at, now)
        scheduled = now + wait if wait else now  # one float object when equal: 24 B per record
        params = check_json_safe(params, "params")
        job_id = new_id() if id is None else _check_new_id(id)
        record = JobRecord(
            job_id,
            name,
            _CREATED,
            _NO_LABELS if labels is None else self._intern_labels(labels),
            params,
            priority,
            now,
            scheduled,
            self._origin,
            spec.key,
        )
        if self._memory is not None:
            self._memory.insert_now(record)  # the store and the entry share this record
        else:
            await self._store.insert(attrs.evolve(record))
        entry = _Entry(self, record, spec, _CREATED)
        self._entries[job_id] = entry
        if self._streams:
            self._publish(record, progress=False)
        if wait > 0.0:
            self._schedule(entry, anyio.current_time() + wait)
        else:
            self._enqueue(entry)
        return JobRef(job_id, name, datetime.fromtimestamp(scheduled, UTC))

    def _intern_labels(self, labels: Mapping[str, str] | None) -> Mapping[str, str]:
        """Validated, read-only labels; jobs with equal labels share one mapping (memory)."""
        checked = check_labels(labels)
        if not checked:
            return checked
        key = tuple(checked.items())
        cached = self._labels_cache.get(key)
        if cached is not None:
            return cached
        if len(self._labels_cache) < _MAX_INTERNED_LABELS:
            self._labels_cache[key] = checked
        return checked

    @staticmethod
    def _default_name(fn: JobFunction) -> str:
        return getattr(fn, "__qualname__", None) or type(fn).__qualname__

    # -- scheduling -------------------------------------------------------------------

    def _enqueue(self, entry: _Entry) -> None:
        self._ready.push(entry)
        if self._idle:
            self._work_wakeup.fire()
        elif not self._starting:
            self._spawn_worker()

    def _schedule(self, entry: _Entry, due: float) -> None:
        entry.due = due
        self._seq += 1
        heapq.heappush(self._delayed, (due, self._seq, entry))
        self._schedule_wakeup.fire()

    def _spawn_worker(self) -> None:
        limit = self._max_concurrency
        if (limit is not None and self._workers >= limit) or self._tg is None or self._state == "closed":
            return
        self._workers += 1
        self._worker_starts += 1
        self._starting += 1
        # In the manager's own context, not in the context of whoever submitted just now.
        self._context.run(self._tg.start_soon, self._worker)

    def _next_ready(self) -> _Entry | None:
        ready = self._ready
        entries = self._entries
        while ready._size:
            entry = ready.pop()
            if entry is None:  # pragma: no cover - _size says there is one
                break
            record = entry.record
            if entry.job is not None or entries.get(record.id) is not entry:
                continue  # canceled while it waited (and forgotten), or started already
            if record.state is not _CREATED:
                # Another manager sharing the MemoryStore canceled it while it waited.
                self._adopt_foreign_cancel(entry)
                continue
            return entry
        return None

    async def _worker(self) -> None:
        self._starting -= 1
        worker = _Worker()
        worker.context = contextvars.copy_context()
        try:
            while True:
                scope = worker.scope = new_cancel_scope()
                outcome: object = _CANCELED_HERE  # if the scope swallows a canceled job's cancellation
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
            self._workers -= 1
        if outcome is _CONTEXT_CHANGED and self._ready._size:
            self._spawn_worker()  # a fresh worker, in the manager's context, goes on

    async def _work(self, worker: _Worker, scope: anyio.CancelScope) -> object:  # noqa: C901, PLR0912 - the hot path, inline on purpose
        """Run jobs until told to stop, a job run in place was canceled, or a job changed context variables.

        A job without retry or timeout runs right in this loop: no task, no Job, no
        scope of its own; an Executor runs the others. Jobs start in the context the
        manager was entered in: a job that sets a context variable (``structlog.contextvars``,
        say) retires its worker, so that nothing it set leaks into the next job, and the
        later jobs of its function each run in a context of their own (``_in_context``).
        """
        done_in_a_row = 0
        while True:
            entry = self._next_ready()
            if entry is None:
                self._drained.fire()
                if self._state == "closed" or self._idle >= _MAX_IDLE_WORKERS:
                    return _STOPPED
                self._idle += 1
                try:
                    await self._work_wakeup.wait()
                finally:
                    self._idle -= 1
                done_in_a_row = 0
                continue
            if self._ready._size and self._workers - self._executing <= 1:
                # No other worker is free (idle, starting, or between two jobs): keep a
                # spare coming, so that if this job blocks, the next one still starts.
                self._spawn_worker()
            if self._memory is None and not await self._claim(entry):
                continue
            spec = worker.spec = entry.spec
            if spec.retry is None and spec.timeout is None:
                ctx = self._start_in_place(entry, worker)
                try:
                    if spec.isolate:
                        context = self._context.copy()
                        value = await _in_context(context, context.run(spec.fn, ctx))
                    else:
                        value = await spec.fn(ctx)
                except Exception as exc:  # noqa: BLE001 - recorded, never lost
                    self._end_in_place(entry, _FAILED, exc, None)
                except BaseException as exc:
                    if isinstance(exc, anyio.get_cancelled_exc_class()):
                        # This job was canceled (our scope swallows it), or the manager is closing.
                        self._end_in_place(entry, _CANCELED, None, None)
                    else:  # KeyboardInterrupt, SystemExit: recorded, then on their way
                        self._end_in_place(entry, _FAILED, exc, None)
                    raise
                else:
                    self._end_in_place(entry, _SUCCEEDED, None, value)
                if scope.cancel_called:
                    return _CANCELED_HERE  # leave the scope, open a new one
            else:
                await self._execute(entry)
            if contextvars.copy_context() != worker.context:
                spec.isolate = True  # its next jobs run in contexts of their own
                return _CONTEXT_CHANGED
            done_in_a_row += 1
            if done_in_a_row >= _JOBS_PER_CHECKPOINT:
                done_in_a_row = 0
                await anyio.lowlevel.checkpoint()

    async def _scheduler(self) -> None:
        delayed = self._delayed
        while True:
            now = anyio.current_time()
            while delayed and delayed[0][0] <= now:
                entry = heapq.heappop(delayed)[2]
                if entry.due is not None and self._entries.get(entry.record.id) is entry:
                    entry.due = None
                    self._enqueue(entry)
            if delayed:
                with anyio.move_on_after(delayed[0][0] - now):
                    await self._schedule_wakeup.wait()
            else:
                await self._schedule_wakeup.wait()

    # -- running ------------------------------------------------------------------------

    async def _claim(self, entry: _Entry) -> bool:
        """Over a store reached through the protocol: take the job only if it still waits.

        Another manager may have canceled it meanwhile; the store decides, atomically.
        (With a MemoryStore the shared record already tells, see ``_next_ready``.)
        """
        record = entry.record
        update = RecordUpdate(record.id, {"owner": self._origin}, _CLAIMABLE)
        self._executing += 1  # counted meanwhile: a closing manager waits for the claim
        try:
            claimed = (await self._store.apply([update], origin=self._origin))[0]
        finally:
            self._executing -= 1
            self._drained.fire()
        if self._entries.get(record.id) is not entry or record.state is not _CREATED:
            return False  # canceled here while claiming
        if not claimed:
            self._adopt_foreign_cancel(entry)
        return claimed

    def _start_in_place(self, entry: _Entry, worker: _Worker) -> Context:
        """Mark a job run in place RUNNING; returns the context to call its function with."""
        record = entry.record
        entry.worker = worker
        entry._live_run = 1
        record.attempts += 1
        record.state = _RUNNING
        record.started = time.time_ns() // 1000 / 1e6  # now_timestamp(), inline
        self._executing += 1
        memory = self._memory
        if memory is None:
            self._changed(entry)
        else:  # _changed(entry), inline
            # Put off: a job that ends before it yields moves once, CREATED -> its end.
            memory.reindex_later(record, entry.flushed_state)
            entry.flushed_state = _RUNNING
            feeds = memory._feeds
            if feeds and (len(feeds) > 1 or feeds[0].origin != self._origin):
                memory.touched(record, self._origin)
        if self._streams:
            self._publish(record, progress=False)
        if _hooks.active:
            entry.t0 = time.perf_counter()
            self._emit(entry, _hooks.JOB_STARTED, None, None)
        return Context(entry, 1)

    def _end_in_place(  # noqa: C901 - the hot path, inline on purpose (benchmarks/bench_manager.py)
        self, entry: _Entry, state: State, error: BaseException | None, value: Any
    ) -> None:
        record = entry.record
        entry._live_run = 0
        entry.worker = None
        self._executing -= 1
        if entry.cancel_requested:
            state = _CANCELED
        elif state is _SUCCEEDED:
            if value is None:
                value = entry._result
            plain: object = value
            cls = type(plain)
            if cls is int or cls is str or cls is bool:
                record.result = value  # check_json_safe's answer, without the call
            elif value is not None:
                try:
                    record.result = check_json_safe(value, "the job's result")
                except (TypeError, ValueError) as exc:
                    state = _FAILED
                    error = exc
        if error is not None:
            record.error = error_text(error)
            record.error_type = _qualname(error)
        record.ended = time.time_ns() // 1000 / 1e6  # now_timestamp(), inline
        record.state = state
        del self._entries[record.id]
        self._changed(entry)
        if self._streams:
            self._publish(record, progress=False)
        if self._waiters:
            self._wake_waiter(record.id, record)
        if self._drained._event is not None:
            self._drained.fire()
        if _hooks.active:
            self._emit_end(entry, state, error)

    def _emit_end(self, entry: _Entry, state: State, error: BaseException | None) -> None:
        if state is _SUCCEEDED:
            name = _hooks.JOB_SUCCEEDED
        elif state is _FAILED:
            name = _hooks.JOB_FAILED
        else:
            name = _hooks.JOB_CANCELED
        # t0 is 0.0 when the hooks were set while the job ran: wall-clock then.
        record = entry.record
        started = record.started
        ended = record.ended
        if entry.t0:
            duration: float | None = time.perf_counter() - entry.t0
        elif started is not None and ended is not None:
            duration = max(ended - started, 0.0)
        else:  # pragma: no cover - a job run in place has both
            duration = None
        self._emit(entry, name, error, duration)

    @staticmethod
    def _emit(entry: _Entry, name: str, error: BaseException | None, duration: float | None) -> None:
        if not _hooks.wanted(name):
            return  # e.g. the default hook with structlog filtering debug events out
        record = entry.record
        _hooks.emit(
            _hooks.HookEvent(
                name=name,
                job_id=record.id,
                job_name=record.name,
                labels=record.labels,
                state=record.state,
                error=error,
                duration=duration,
            )
        )

    async def _execute(self, entry: _Entry) -> None:
        """Run a job with retry or timeout through an Executor."""
        spec = entry.spec
        record = entry.record
        job: Job[Any] = Job(spec.fn, id=record.id, name=record.name)
        job._labels = record.labels  # validated and copied at submit already
        job._listener = self._job_changed
        entry.job = job
        self._executing += 1
        executor = entry.executor = Executor(job, retry=spec.retry, timeout=spec.timeout)
        try:
            with contextlib.suppress(Exception):  # recorded from the job in _finish
                if spec.isolate:
                    context = self._context.copy()
                    await _in_context(context, context.run(executor.start, record.params))
                else:
                    await executor.start(record.params)
        finally:
            job._listener = None
            self._executing -= 1
            self._finish(entry, job)

    def _job_changed(self, job: Job[Any]) -> None:
        entry = self._entries.get(job.id)
        if entry is None or entry.job is not job:
            return
        record = entry.record
        state = job.state
        if state is entry.job_state:
            record.progress = job.progress
            record.message = job.message
            self._changed(entry)
            if self._streams:
                self._publish(record, progress=True)
            return
        entry.job_state = state
        if state is _RUNNING:
            record.attempts += 1
            if record.state is _CREATED:
                record.state = _RUNNING
                record.started = now_timestamp()
                record.progress = 0.0
                record.message = None
                self._changed(entry)
                self._publish_state(record)
            else:
                self._changed(entry)  # another attempt: the record stays RUNNING
            return
        if state is _CANCELING and record.state is _RUNNING:
            record.state = _CANCELING
            self._changed(entry)
            self._publish_state(record)
        # FAILED/SUCCEEDED/CANCELED of one attempt: the record stays as it is until
        # the run (with all its retries) ends in _finish.

    def _finish(self, entry: _Entry, job: Job[Any]) -> None:
        record = entry.record
        state = job.state
        if record.state is _CANCELING or entry.cancel_requested:
            state = _CANCELED
        if state is _SUCCEEDED:
            try:
                record.result = check_json_safe(job.result, "the job's result")
            except (TypeError, ValueError) as exc:
                state = _FAILED
                record.error = str(exc)
                record.error_type = _qualname(exc)
        error = job.error
        if error is not None:
            record.error = error_text(error)
            record.error_type = _qualname(error)
        record.progress = job.progress
        record.message = job.message
        record.ended = ended = now_timestamp()
        if record.started is None:
            record.started = ended
        record.state = state
        entry.job = None
        entry.executor = None
        del self._entries[record.id]
        self._changed(entry)
        self._publish_state(record)
        self._wake_waiter(record.id, record)
        self._signal_drained()

    def _signal_drained(self) -> None:
        self._drained.fire()

    def _wake_waiter(self, job_id: str, record: JobRecord | None = None, info: JobInfo | None = None) -> None:
        """Wake the ``wait`` calls for *job_id*, handing them its final info.

        They read the store again, but a finished record may already be gone
        (``retention``), so the info at the end is kept for them.
        """
        waiter = self._waiters.pop(job_id, None)
        if waiter is not None:
            waiter.final = info if info is not None else (None if record is None else record.info())
            waiter.event.set()

    def _cancel_entry(self, entry: _Entry) -> bool:
        """Cancel a job this manager owns; True if something changed."""
        record = entry.record
        if record.state is _CREATED:
            record.state = _CANCELED
            record.ended = now_timestamp()
            del self._entries[record.id]
            self._changed(entry)
            self._publish_state(record)
            self._wake_waiter(record.id, record)
            self._signal_drained()
            return True
        if record.state is not _RUNNING:
            return False
        entry.cancel_requested = True
        if entry.worker is not None:
            scope = entry.worker.scope
            assert scope is not None  # noqa: S101 - the worker runs the job in it
            scope.cancel()
        elif entry.executor is not None:
            entry.executor.request_stop()  # also between two attempts, while it waits
        elif entry.job is not None:
            entry.job.cancel()
        if record.state is _RUNNING:
            record.state = _CANCELING
            self._changed(entry)
            self._publish_state(record)
        return True

    def _adopt_foreign_cancel(self, entry: _Entry) -> None:
        """Another manager canceled this waiting job: the store says CANCELED; follow it."""
        record = entry.record
        _logger.debug("anyjob.canceled_elsewhere", job_id=record.id)
        if self._entries.get(record.id) is not entry:
            return
        if record.state is _CREATED:  # a local copy (not a MemoryStore record): mirror the store
            record.state = _CANCELED
            record.ended = now_timestamp()
        entry.flushed_state = record.state
        del self._entries[record.id]
        self._publish_state(record)
        self._wake_waiter(record.id, record)
        self._signal_drained()

    # -- writing to the store -------------------------------------------------------------

    def _changed(self, entry: _Entry) -> None:
        """Record a change of *entry*: at once in a MemoryStore, else coalesced for the flusher."""
        memory = self._memory
        if memory is not None:
            record = entry.record
            old = entry.flushed_state
            if record.state is not old:
                memory.reindex(record, old)
                entry.flushed_state = record.state
            feeds = memory._feeds  # this manager's own feed, and maybe other managers'
            if feeds and (len(feeds) > 1 or feeds[0].origin != self._origin):
                memory.touched(record, self._origin)
            return
        if not self._dirty:
            self._flush_wakeup.fire()
        self._dirty[entry.record.id] = entry

    async def _flush(self) -> None:
        """Write every pending change to the store (in order; one batch).

        Returns once every change made before the call is in the store: also
        when the flusher is writing them right now (read your own writes).
        """
        lock = self._flush_lock
        if not self._dirty and (lock is None or not lock.locked()):
            return
        assert lock is not None  # noqa: S101 - made in __aenter__
        async with lock:
            if not self._dirty:
                return
            entries = list(self._dirty.values())
            self._dirty = {}
            updates: list[RecordUpdate] = []
            for entry in entries:
                record = entry.record
                updates.append(
                    RecordUpdate(record.id, _run_fields(record), frozenset((entry.flushed_state,)))
                )
                entry.flushed_state = record.state
            # Shielded: the batch is out of _dirty now, and a canceled write would lose it.
            applied: list[bool] = []
            with anyio.CancelScope(shield=True):
                applied = await self._store.apply(updates, origin=self._origin)
            for entry, ok in zip(entries, applied, strict=True):
                if not ok:
                    self._conflict(entry)

    def _conflict(self, entry: _Entry) -> None:
        """The store refused a write: another manager canceled the job while it waited."""
        record = entry.record
        entry.flushed_state = _CANCELED
        if self._entries.get(record.id) is not entry:
            return
        if record.state is _CREATED:
            self._adopt_foreign_cancel(entry)
        else:
            self._cancel_entry(entry)  # it started here meanwhile: stop it

    async def _flusher(self) -> None:
        while True:
            if not self._dirty:
                await self._flush_wakeup.wait()
            await self._flush()

    async def _retain(self, retention: float) -> None:
        interval = min(max(retention / 2, 0.01), 1.0)
        while True:
            await anyio.sleep(interval)
            await self._flush()
            await self._store.delete_finished(time.time() - retention)

    async def _follow(self, feed: Any) -> None:
        """Apply what other managers sharing the store did."""
        try:
            async for changes in feed:
                for change in changes:
                    self._foreign_change(change)
        finally:
            feed.close()

    def _foreign_change(self, change: StoreChange) -> None:
        info = change.info
        entry = self._entries.get(change.job_id)
        if entry is not None and change.cancel_requested:
            if info is not None and info.state is _CANCELED and entry.record.state in {_CREATED, _CANCELED}:
                self._adopt_foreign_cancel(entry)  # canceled while waiting
            else:
                self._cancel_entry(entry)
            return
        if info is None:
            return
        if self._streams:
            event = JobEvent(info.id, info.state, info.progress, info.message, utcnow())
            for stream in self._streams:
                if stream.wants(info.id):
                    stream.push(event, progress=False)
        if info.state.is_done:
            self._wake_waiter(info.id, info=info)

    # -- events ----------------------------------------------------------------------------

    def _publish_state(self, record: JobRecord) -> None:
        if self._streams:
            self._publish(record, progress=False)

    def _publish(self, record: JobRecord, *, progress: bool) -> None:
        event = JobEvent(record.id, record.state, record.progress, record.message, utcnow())
        for stream in self._streams:
            if stream.wants(record.id):
                stream.push(event, progress=progress)

    def events(self, id: str | None = None) -> EventStream:  # noqa: A002 - the contract's name
        """Subscribe to state changes and progress of one job (*id*) or of all.

        The subscription starts now. Iterate with ``async for``; the iterator
        ends when the manager closes. Events of one job arrive in order; a slow
        consumer never blocks the jobs (progress is coalesced for it).

        Raises:
            JobError: The manager is closed.
            TypeError: *id* is not a str.
        """
        if id is not None:
            _check_id(id)
        if self._state in {"closing", "closed"}:
            msg = "cannot subscribe to events: the JobManager is closed"
            raise JobError(msg)
        stream = EventStream(id, on_close=self._unsubscribe)
        self._streams.append(stream)
        return stream

    def _unsubscribe(self, stream: EventStream) -> None:
        self._streams = [s for s in self._streams if s is not stream]

    # -- queries -------------------------------------------------------------------------------

    async def get(self, id: str) -> JobInfo | None:  # noqa: A002
        """The job's :class:`~anyjob.JobInfo`, or ``None`` if no job has that id."""
        _check_id(id)
        await self._flush()
        return await self._store.get(id)

    async def status(self, id: str) -> State | None:  # noqa: A002
        """The job's state, or ``None`` if no job has that id."""
        _check_id(id)
        entry = self._entries.get(id)
        if entry is not None:
            await anyio.lowlevel.checkpoint()
            return entry.record.state
        await self._flush()
        if self._memory is not None:
            return self._memory.state_now(id)
        info = await self._store.get(id)
        return None if info is None else info.state

    async def wait(self, id: str, timeout: float | timedelta | None = None) -> JobInfo | None:  # noqa: A002
        """Wait until the job is done and return its info.

        Event-driven: no polling. When *timeout* expires first, returns the
        latest info (the job still executing or waiting).

        Returns:
            The info, or ``None`` if no job has that id.

        Raises:
            TypeError, ValueError: Invalid *id* or *timeout*.
        """
        _check_id(id)
        seconds = math.inf if timeout is None else to_seconds(timeout, "timeout", allow_inf=True)
        memory = self._memory
        if memory is not None:
            info = memory.get_now(id)  # the common case of a loop of waits: no await needed
            if info is None or info.state.is_done:
                return info
            waiter = self._join_waiter(id)
        else:
            # Waiting before reading: a job that ends while the store answers still wakes us.
            waiter = self._join_waiter(id)
            try:
                await self._flush()
                info = await self._store.get(id)
            except BaseException:
                self._leave_waiter(id, waiter)
                raise
            if info is None or info.state.is_done:
                self._leave_waiter(id, waiter)
                return info
        try:
            with anyio.move_on_after(seconds):
                await waiter.event.wait()
        finally:
            self._leave_waiter(id, waiter)
        await self._flush()
        latest = await self._store.get(id)
        if latest is not None:
            return latest
        return waiter.final or info  # deleted meanwhile: the info it ended with

    def _join_waiter(self, job_id: str) -> _Waiter:
        waiter = self._waiters.get(job_id)
        if waiter is None:
            waiter = self._waiters[job_id] = _Waiter()
        waiter.users += 1
        return waiter

    def _leave_waiter(self, job_id: str, waiter: _Waiter) -> None:
        waiter.users -= 1
        if not waiter.users and self._waiters.get(job_id) is waiter:
            del self._waiters[job_id]  # nobody waits any more (a timeout, or nothing to wait for)

    async def list(
        self,
        *,
        state: State | Iterable[State] | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Jobs matching every filter given, newest first.

        Args:
            state: One :class:`~anyjob.State` or several.
            name: Only jobs with this name.
            labels: Only jobs having all these pairs.
            created_after: Only jobs created after this aware datetime.
            created_before: Only jobs created before this aware datetime.
            limit: At most this many (1..1000).
            offset: Skip this many first (>= 0).

        Raises:
            TypeError, ValueError: An invalid filter.
        """
        states = _check_states(state)
        if name is not None and not isinstance(name, str):
            msg = f"name must be a str, not {type(name).__name__}"
            raise TypeError(msg)
        _check_int(limit, "limit")
        _check_int(offset, "offset")
        if not 1 <= limit <= _MAX_LIMIT:
            msg = f"limit must be between 1 and {_MAX_LIMIT}, got {limit}"
            raise ValueError(msg)
        if offset < 0:
            msg = f"offset must not be negative, got {offset}"
            raise ValueError(msg)
        query = JobQuery(
            states=states,
            name=name,
            labels=None if labels is None else check_labels(labels),
            created_after=None
            if created_after is None
            else ensure_aware(created_after, "created_after").timestamp(),
            created_before=None
            if created_before is None
            else ensure_aware(created_before, "created_before").timestamp(),
            limit=limit,
            offset=offset,
        )
        await self._flush()
        return await self._store.query(query)

    async def stats(
        self, *, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> JobStatistics:
        """Counts over the jobs (all, or those with *name* and/or all *labels*)."""
        if name is not None and not isinstance(name, str):
            msg = f"name must be a str, not {type(name).__name__}"
            raise TypeError(msg)
        checked = None if labels is None else check_labels(labels)
        await self._flush()
        return await self._store.statistics(name=name, labels=checked)

    # -- control ---------------------------------------------------------------------------------

    async def cancel(self, id: str) -> bool:  # noqa: A002
        """Cancel a job: a waiting one becomes ``CANCELED`` at once, an executing one ``CANCELING``.

        Works for jobs run by another manager sharing the store.

        Returns:
            False when the job was already done (or already canceling).

        Raises:
            JobNotFoundError: No job has that id.
        """
        _check_id(id)
        entry = self._entries.get(id)
        if entry is not None:
            changed = self._cancel_entry(entry)
            await anyio.lowlevel.checkpoint()
            return changed
        await self._flush()
        before = await self._store.request_cancel(id, origin=self._origin)
        if before is None:
            msg = f"no job with id {id!r}"
            raise JobNotFoundError(msg, job_id=id)
        if before is _CREATED:
            self._wake_waiter(id)
        return before is _CREATED or before is _RUNNING

    async def retry(self, id: str) -> JobRef:  # noqa: A002
        """Queue a ``FAILED`` or ``CANCELED`` job again under the same id.

        It runs under this manager, with the same function and policies;
        ``attempts`` grows with each try.

        Raises:
            JobNotFoundError: No job has that id.
            JobStateError: The job is not failed or canceled.
            JobError: The manager is closed, or its function is unknown here
                (register it by name to retry jobs from another process).
        """
        _check_id(id)
        self._check_open("retry")
        await self._flush()
        record = await self._store.get_record(id)
        if record is None:
            msg = f"no job with id {id!r}"
            raise JobNotFoundError(msg, job_id=id)
        if record.state not in _RETRYABLE:
            msg = (
                f"cannot retry job {record.name!r} ({id}): it is {record.state.value}, not failed or canceled"
            )
            raise JobStateError(msg, job_id=id)
        spec = self._registry.get(record.function) or self._local_specs.get(record.function)
        if spec is None:
            msg = (
                f"cannot retry job {record.name!r} ({id}): its function {record.function!r} is not known "
                "to this manager; register it with jobs.register(fn, name)"
            )
            raise JobError(msg, job_id=id)
        now = now_timestamp()
        update = RecordUpdate(
            id,
            {
                "state": _CREATED,
                "progress": 0.0,
                "message": None,
                "result": None,
                "error": None,
                "error_type": None,
                "started": None,
                "ended": None,
                "scheduled": now,
                "owner": self._origin,
                "cancel_requested": False,
            },
            _RETRYABLE,
        )
        applied = await self._store.apply([update], origin=self._origin)
        if not applied[0]:
            msg = f"cannot retry job {record.name!r} ({id}): it changed meanwhile"
            raise JobStateError(msg, job_id=id)
        if self._memory is not None:
            shared = self._memory._records.get(id)
            assert shared is not None  # noqa: S101 - the update above applied to it
            record = shared
        else:
            for key, value in update.fields.items():
                setattr(record, key, value)
        entry = _Entry(self, record, spec, _CREATED)
        self._entries[id] = entry
        self._publish_state(record)
        self._enqueue(entry)
        return JobRef(id=id, name=record.name, scheduled_at=from_timestamp(now))  # type: ignore[arg-type]

    async def cleanup(self, older_than: float | timedelta) -> int:
        """Delete finished jobs that ended before ``now - older_than``; returns how many.

        With ``retention`` set this happens automatically.
        """
        seconds = to_seconds(older_than, "older_than")
        await self._flush()
        return await self._store.delete_finished(time.time() - seconds)
