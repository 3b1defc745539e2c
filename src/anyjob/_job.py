"""Job: one run of one function through the state machine.

What other modules import from here and lives elsewhere is re-exported: ``Context``, the
error texts, ``JobStats``, ``wrap``, the backend helpers (``anyjob._context``, ``_error_text``,
``_jobstats``, ``_functions``, ``_backend``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from time import perf_counter, time
from typing import Any, Final, Generic, TypeVar, final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
import structlog

from anyjob._backend import current_async_library as _current_async_library
from anyjob._backend import new_cancel_scope
from anyjob._context import Context, Reporter
from anyjob._error_text import MAX_TRACEBACK_LENGTH, error_text, error_traceback
from anyjob._exceptions import JobStateError
from anyjob._functions import default_name, job_function, wrap
from anyjob._ids import format_id, new_id_value
from anyjob._jobstats import JobStats, job_stats
from anyjob._limits import check_id, check_labels, check_name
from anyjob._state import State
from anyjob._time import to_datetime
from anyjob.instrumentation import _hooks

__all__ = [
    "MAX_TRACEBACK_LENGTH",
    "Context",
    "Job",
    "JobStats",
    "Reporter",
    "_current_async_library",  # re-exported from anyjob._backend, for the manager
    "check_labels",  # re-exported from anyjob._limits until the manager imports it from there
    "error_text",
    "error_traceback",
    "new_cancel_scope",  # re-exported from anyjob._backend, for the manager
    "wrap",
]

R = TypeVar("R")

_CREATED: Final = State.CREATED
_RUNNING: Final = State.RUNNING
_CANCELING: Final = State.CANCELING
_SUCCEEDED: Final = State.SUCCEEDED
_FAILED: Final = State.FAILED
_CANCELED: Final = State.CANCELED
_ZERO: Final = timedelta(0)
_NO_LABELS: Final = check_labels(None)
#: What a run driven by a body is "in" instead of a scope (its attempts have their own).
_NO_SCOPE: Final = contextlib.nullcontext()

_logger = structlog.get_logger("anyjob")

#: Called with the job after every state or progress change (used by the manager).
Listener = Callable[["Job[Any]"], None]


@final
@attrs.define(eq=False, init=False)
class Job(Generic[R]):
    """A coroutine function wrapped in a state machine.

    ``fn`` is ``async def fn(ctx: Context) -> R`` (see :func:`wrap` for functions
    without a context). A job runs in the task that calls :meth:`run`, may be
    canceled with :meth:`cancel`, and may run again once done. Exceptions raised
    by ``fn`` are recorded in :attr:`error`, never lost and never raised by ``run``
    (except ``KeyboardInterrupt``/``SystemExit`` and cancellation of the caller,
    which are recorded and re-raised).

    Args:
        fn: The async function to run.
        id: The job's id; by default a new UUIDv7 string.
        name: A name for people and filters; by default ``fn.__qualname__``.
        labels: ``str -> str`` pairs, copied into a read-only mapping.
        logger: A structlog logger to bind ``ctx.logger`` from; by default
            ``structlog.get_logger("anyjob")``.

    Raises:
        TypeError: *fn* is not ``async def fn(ctx)`` (see :func:`anyjob._functions.job_function`:
            a sync function, a function without arguments, a Policy-decorated function
            are refused with a message saying what to do), or *id*, *name* or *labels*
            have the wrong type.
        ValueError: *id* or *name* is empty, too long or not storable text; *labels*
            break a limit (see ``anyjob._limits``).
    """

    _fn: Callable[[Context], Awaitable[R]]
    _id: str | None
    _id_value: int
    _name: str
    _labels: Mapping[str, str]
    _base_logger: Any
    _state: State
    _progress: float
    _message: str | None
    _params: Any
    _result: R | None
    _error: BaseException | None
    _created: float
    _started: float | None
    _ended: float | None
    _t0: float
    _elapsed: float
    _run_no: int
    _live_run: int
    _scope: anyio.CancelScope | None
    _cancel_requested: bool
    _done: anyio.Event | None
    _listener: Listener | None

    def __init__(
        self,
        fn: Callable[[Context], Awaitable[R]],
        *,
        id: str | None = None,  # noqa: A002 - the contract's name
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        logger: Any = None,
    ) -> None:
        self._fn = job_function(fn, what="Job()")
        if id is None:
            # Formatted on first use: most of the cost of an id is the string.
            self._id_value = new_id_value()
        else:
            id = check_id(id)  # noqa: A001 - the contract's name
        name = default_name(fn) if name is None else check_name(name)
        self._id = id
        self._name = name
        self._labels = _NO_LABELS if labels is None else check_labels(labels)
        self._base_logger = _logger if logger is None else logger
        self._state = _CREATED
        self._progress = 0.0
        self._message = None
        self._params = None
        self._result = None
        self._error = None
        self._created = time()
        self._started = None
        self._ended = None
        self._t0 = 0.0
        self._elapsed = 0.0
        self._run_no = 0
        self._live_run = 0
        self._scope = None
        self._cancel_requested = False
        self._done = None
        self._listener = None

    def __repr__(self) -> str:
        return f"<Job {self._name!r} id={self.id} state={self._state.value}>"

    # -- read-only attributes -------------------------------------------------

    @property
    def id(self) -> str:
        """The job's id."""
        id_ = self._id
        if id_ is None:
            id_ = self._id = format_id(self._id_value)
        return id_

    @property
    def name(self) -> str:
        """The job's name."""
        return self._name

    @property
    def labels(self) -> Mapping[str, str]:
        """The job's labels (a read-only copy of what was given)."""
        return self._labels

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def progress(self) -> float:
        """Progress of the latest run in ``[0, 1]``; 0.0 until the function reports."""
        return self._progress

    @property
    def message(self) -> str | None:
        """The latest progress message of the latest run, or ``None``."""
        return self._message

    @property
    def params(self) -> Any:
        """The params of the latest run (``None`` before the first)."""
        return self._params

    @property
    def result(self) -> R | None:
        """The result of the latest run.

        The function's return value, or what it set with ``ctx.set_result``.
        """
        return self._result

    @property
    def error(self) -> BaseException | None:
        """The exception the function raised in the latest run, or ``None``.

        For a timed-out attempt (see :class:`~anyjob.Executor`) this is a ``TimeoutError``.
        """
        return self._error

    @property
    def created_at(self) -> datetime:
        """When the job was made (UTC)."""
        return datetime.fromtimestamp(self._created, UTC)

    @property
    def started_at(self) -> datetime | None:
        """When the latest run started (UTC), or ``None``."""
        return to_datetime(self._started)

    @property
    def ended_at(self) -> datetime | None:
        """When the latest run ended (UTC); ``None`` before that, and while running."""
        return to_datetime(self._ended)

    @property
    def execution_time(self) -> timedelta:
        """How long the latest run took; zero before the first run, growing while executing."""
        if self._state is _RUNNING or self._state is _CANCELING:
            return timedelta(seconds=perf_counter() - self._t0)
        if self._run_no == 0:
            return _ZERO
        return timedelta(seconds=self._elapsed)

    @property
    def is_done(self) -> bool:
        """True when the job is ``SUCCEEDED``, ``FAILED`` or ``CANCELED``."""
        return self._state.is_done

    @property
    def is_executing(self) -> bool:
        """True when the job is ``RUNNING`` or ``CANCELING``."""
        return self._state is _RUNNING or self._state is _CANCELING

    def is_state(self, *states: State) -> bool:
        """True when the job's state is one of *states*."""
        return self._state in states

    def stats(self) -> JobStats:
        """A frozen snapshot of the job."""
        return job_stats(self)

    # -- control ----------------------------------------------------------------

    def cancel(self) -> bool:
        """Ask the running function to stop.

        Returns:
            True when the job was ``RUNNING`` (it is now ``CANCELING`` and ends
            ``CANCELED`` whatever the function then does); False otherwise.
        """
        if self._state is not _RUNNING:
            return False
        self._cancel_requested = True
        self._set_state(_CANCELING)
        scope = self._scope
        if scope is not None:
            scope.cancel()
        return True

    async def wait(self) -> None:
        """Return once the job is not executing (at once if it never started)."""
        if not self.is_executing:
            await anyio.lowlevel.checkpoint()
            return
        done = self._done
        if done is None:
            done = self._done = anyio.Event()
        await done.wait()

    async def run(
        self,
        params: Any = None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the function once, in the calling task, to a terminal state.

        The job is ``RUNNING`` before this first yields, so a second ``run`` in
        the same tick raises; ``await task_group.start(job.run, params)`` returns
        once the job is ``RUNNING``. A re-run resets ``result``, ``error``,
        ``progress``, ``message``, ``started_at`` and ``ended_at``.

        Args:
            params: Made available as ``ctx.params`` and ``job.params``.
            task_status: Set by ``TaskGroup.start``.

        Raises:
            JobStateError: The job is executing.

        An exception raised by the function ends the job ``FAILED`` and is kept
        in :attr:`error`; it is not raised here. ``KeyboardInterrupt`` and
        ``SystemExit`` are recorded and re-raised. If the caller's scope is
        cancelled, the job ends ``CANCELED`` and the cancellation propagates.
        """
        await self._run(params, task_status)

    # -- the engine (also driven by Executor) -------------------------------------

    def _report(self, progress: float, message: str | None) -> None:
        self._progress = progress
        if message is not None:
            self._message = message
        if self._listener is not None:
            self._listener(self)

    def _set_state(self, new: State) -> None:
        old = self._state
        if not old.can_become(new):  # pragma: no cover - guarded by every caller
            msg = f"job {self._name!r} ({self.id}) cannot go from {old.value} to {new.value}"
            raise JobStateError(msg, job_id=self.id)
        self._state = new
        if self._listener is not None:
            self._listener(self)

    def _start(self, params: Any) -> None:
        """Enter RUNNING synchronously (before any yield), resetting the previous run."""
        state = self._state
        if state is _RUNNING or state is _CANCELING:
            msg = f"cannot run job {self._name!r} ({self.id}): it is already {state.value}"
            raise JobStateError(msg, job_id=self.id)
        self._params = params
        self._result = None
        self._error = None
        self._progress = 0.0
        self._message = None
        self._ended = None
        self._cancel_requested = False
        self._run_no += 1
        self._live_run = self._run_no
        self._started = time()
        self._t0 = perf_counter()
        self._set_state(_RUNNING)
        if _hooks.active and _hooks.wanted(_hooks.JOB_STARTED):
            self._emit(_hooks.JOB_STARTED, None)

    async def _run(
        self,
        params: Any,
        task_status: anyio.abc.TaskStatus[None],
        body: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """One run: RUNNING, the function in the job's cancel scope (or *body*), then its end.

        *body* (an Executor's attempts) replaces the one call of the function: it
        calls :meth:`_try` for each attempt and :meth:`_pause` between two, each in a
        cancel scope of its own that :meth:`cancel` reaches (one scope an attempt, as
        for a plain run), and raises the error the run ends with. The job stays
        RUNNING from its first attempt to its last, so a cancel at any point of the
        run ends it CANCELED like any other (CANCELING -> CANCELED).
        """
        self._start(params)
        scope: contextlib.AbstractContextManager[object]
        if body is None:
            own = self._scope = new_cancel_scope()
            if self._cancel_requested:  # pragma: no cover - a listener canceled at once
                own.cancel()
            scope = own
        else:
            scope = _NO_SCOPE  # the attempts and pauses have their own
        task_status.started()
        value: Any = None
        try:
            with scope:
                if body is None:
                    value = await self._fn(Context(self, self._run_no))
                else:
                    await body()
        except Exception as exc:  # noqa: BLE001 - recorded, never lost
            self._end(_CANCELED if self._cancel_requested else _FAILED, exc)
            return
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                # The caller's scope was cancelled (ours would have caught it).
                self._end(_CANCELED, None)
            else:
                # KeyboardInterrupt, SystemExit, GeneratorExit: record, then let it go on.
                self._end(_CANCELED if self._cancel_requested else _FAILED, exc)
            raise
        if self._cancel_requested:
            self._end(_CANCELED, None)
        else:
            if value is not None:
                self._result = value
            self._end(_SUCCEEDED, None)

    async def _try(self, timeout: float | None, *, again: bool) -> Exception | None:
        """One attempt of the running job's function, inside :meth:`_run`'s *body*.

        Args:
            timeout: Seconds the attempt may take; past it the attempt fails with
                ``TimeoutError``.
            again: Not the run's first attempt: the previous attempt's context goes
                stale and result, error, progress and message start afresh (the
                listener is told), while the job stays RUNNING.

        Returns:
            The attempt's error; ``None`` when it succeeded (its value is the result)
            or when the job was canceled (the body then returns and the run ends
            CANCELED). An exception raised while canceling, the caller's
            cancellation and any ``BaseException`` that is not an ``Exception``
            propagate, ending the run.
        """
        if self._cancel_requested:
            return None  # canceled between two attempts: no further attempt
        if again:
            self._next_attempt()
        scope = self._scope = new_cancel_scope()
        if timeout is not None:
            scope.deadline = anyio.current_time() + timeout
        if self._cancel_requested:  # pragma: no cover - the listener canceled at once
            scope.cancel()
        value: Any = None
        try:
            with scope:
                value = await self._fn(Context(self, self._run_no))
        except Exception as exc:
            if self._cancel_requested:
                raise  # canceled: the run ends CANCELED with it as its error
            return exc
        finally:
            self._scope = None
        if self._cancel_requested:
            return None
        if scope.cancelled_caught:
            return TimeoutError(f"job {self._name!r} ({self.id}) timed out after {timeout} s")
        if value is not None:
            self._result = value
        return None

    def _next_attempt(self) -> None:
        """Start another attempt of the live run: a fresh context, result, error and progress."""
        self._run_no += 1
        self._live_run = self._run_no
        self._result = None
        self._error = None
        self._progress = 0.0
        self._message = None
        if self._listener is not None:
            self._listener(self)

    async def _pause(self, seconds: float) -> None:
        """Wait *seconds* inside :meth:`_run`'s *body* (between two attempts).

        :meth:`cancel` cuts the wait short (the body then finds the job CANCELING);
        the caller's cancellation propagates. Not a positive, finite number: a checkpoint.
        """
        if self._cancel_requested:
            await anyio.lowlevel.checkpoint()
            return
        scope = self._scope = new_cancel_scope()
        try:
            with scope:
                if seconds > 0.0 and math.isfinite(seconds):
                    await anyio.sleep(seconds)
                else:
                    await anyio.lowlevel.checkpoint()
        finally:
            self._scope = None

    def _end(self, state: State, error: BaseException | None) -> None:
        self._elapsed = perf_counter() - self._t0
        self._ended = time()
        self._error = error
        self._scope = None
        self._live_run = 0
        self._set_state(state)
        done = self._done
        if done is not None:
            self._done = None
            done.set()
        if _hooks.active:
            if state is _SUCCEEDED:
                name = _hooks.JOB_SUCCEEDED
            elif state is _FAILED:
                name = _hooks.JOB_FAILED
            else:
                name = _hooks.JOB_CANCELED
            if _hooks.wanted(name):  # not, e.g., for debug events structlog filters out
                self._emit(name, error, self._elapsed)

    def _emit(self, name: str, error: BaseException | None, duration: float | None = None) -> None:
        """Build the event *name* and hand it to the hooks (the caller asked ``wanted``)."""
        _hooks.emit_job_event(name, self.id, self._name, self._labels, self._state, error, duration)
