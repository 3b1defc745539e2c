"""The spec registry: what to run for a submission, and the label sets jobs share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, final

from anyjob._exceptions import JobError
from anyjob._functions import default_name, job_function, policy_parts
from anyjob._job import Context
from anyjob._kinds import EXTERNAL, RESERVED, TRACKED
from anyjob._limits import check_labels, check_name
from anyjob._records import JobRecord
from anyjob._retry import Retry

__all__ = ["EXTERNAL_SPEC", "TRACKED_SPEC", "JobFunction", "Spec", "SpecRegistry"]

JobFunction = Callable[[Context], Awaitable[Any]]

#: Functions (with their policies) remembered for ``retry`` of jobs whose function was not
#: registered; past this many the least recently used are forgotten (register to be safe).
MAX_LOCAL_SPECS: Final = 10_000
#: Distinct label sets shared between jobs (beyond this, each job keeps its own copy).
MAX_INTERNED_LABELS: Final = 4096

_NOTHING: Final = object()


@final
class Spec:
    """What to run: the function and its policies, shared by every job that uses them."""

    __slots__ = (
        "default_name",
        "fn",
        "in_place",
        "isolate",
        "key",
        "registered",
        "resumable",
        "retry",
        "timeout",
    )

    def __init__(
        self,
        key: str,
        fn: JobFunction,
        retry: Retry | None,
        timeout: float | None,
        *,
        registered: bool = False,
        resumable: bool = False,
    ) -> None:
        self.key = key
        self.fn = fn
        self.retry = retry
        self.timeout = timeout
        self.registered = registered
        #: Registered ``resumable=True``: a job of a lost manager goes back to CREATED, not FAILED.
        self.resumable = resumable
        #: No policy: its jobs run right in a worker, without a Job or an Executor.
        self.in_place = retry is None and timeout is None
        #: Its jobs set context variables: each runs in a context of its own instead of
        #: retiring the worker it ran in. Learned from the first such job.
        self.isolate = False
        #: The job name when none is given: the registered name, else the function's.
        self.default_name: str = key if registered else default_name(fn)


async def _never_run(ctx: Context) -> None:  # noqa: ARG001  # pragma: no cover - no worker calls it
    raise AssertionError


#: What the registry's "last function" cache holds before any submission.
_NO_SPEC: Final = Spec("", _never_run, None, None)
#: The spec a tracked block's entry names (the block runs instead; nothing to retry).
TRACKED_SPEC: Final = Spec(TRACKED, _never_run, None, None, registered=True)
#: The spec an external job's record is made with (its work reports in by id).
EXTERNAL_SPEC: Final = Spec(EXTERNAL, _never_run, None, None, registered=True)


@final
class SpecRegistry:
    """Registered functions, the specs of unregistered ones, and interned label sets.

    Invariant: every spec a live or finished job of this manager names (``JobRecord.function``)
    is found by :meth:`for_retry` while it is registered, or while it is among the
    ``MAX_LOCAL_SPECS`` most recently used unregistered ones.
    """

    __slots__ = (
        "_by_call",
        "_count",
        "_labels",
        "_last_fn",
        "_last_spec",
        "_local",
        "_origin",
        "_registered",
    )

    def __init__(self, origin: str) -> None:
        self._origin = origin
        self._registered: dict[str, Spec] = {}
        self._by_call: dict[tuple[Any, ...], Spec] = {}  # (fn, retry, timeout) -> its spec
        self._local: dict[str, Spec] = {}  # key -> spec of an unregistered function
        self._count = 0
        self._last_fn: object = _NOTHING  # never a function: submit(None) must not match it
        self._last_spec: Spec = _NO_SPEC
        self._labels: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}

    @property
    def remembered(self) -> tuple[int, int]:
        """How many specs are cached by call, and how many unregistered ones are kept for retry."""
        return len(self._by_call), len(self._local)

    @property
    def names(self) -> list[str]:
        """The registered names: the functions this manager may take waiting jobs of."""
        return list(self._registered)

    @property
    def resumable(self) -> list[str]:
        """The names registered ``resumable=True``."""
        return [name for name, spec in self._registered.items() if spec.resumable]

    def register(self, fn: object, name: str | None, *, resumable: bool = False) -> None:
        """Register *fn* under *name* (by default its qualified name).

        Raises:
            TypeError: *fn* is not an ``async def fn(ctx)``, or *name* is not a valid name.
            ValueError: Another function is registered under that name.
        """
        checked = job_function(fn, what="register()")
        key = default_name(checked) if name is None else check_name(name, "a registered name")
        if key in RESERVED:
            msg = f"{key!r} is reserved (it marks jobs no function runs); register under another name"
            raise ValueError(msg)
        current = self._registered.get(key)
        if current is not None and current.fn is not checked:
            msg = f"another function is already registered as {key!r}"
            raise ValueError(msg)
        if not isinstance(resumable, bool):
            msg = f"resumable must be a bool, not {type(resumable).__name__}"
            raise TypeError(msg)
        self._registered[key] = Spec(key, checked, None, None, registered=True, resumable=resumable)
        self._by_call.clear()  # a function registered now is named by its registration from now on
        self._last_fn = _NOTHING
        self._last_spec = _NO_SPEC

    def for_submit(self, fn: object, retry: Retry | None, timeout: float | None) -> Spec:
        """The spec to run for ``submit(fn, retry=..., timeout=...)``.

        Raises:
            TypeError: *fn* is not an ``async def fn(ctx)`` nor a registered name, or a
                Policy-decorated function is given a retry or timeout as well.
            ValueError: *fn* names no registered function.
        """
        if fn is self._last_fn and retry is None and timeout is None:
            return self._last_spec  # the same function again: the common case of a loop of submits
        if isinstance(fn, str):
            registered = self._registered.get(fn)
            if registered is None:
                msg = f"no function is registered as {fn!r}; register it first with jobs.register(fn, name)"
                raise ValueError(msg)
            if retry is None and timeout is None:
                return registered
            return self._spec(registered.fn, retry, timeout, fn)
        parts = policy_parts(fn)
        if parts is not None:  # a Policy-decorated function: its function, with its policy
            if retry is not None or timeout is not None:
                msg = (
                    "fn is decorated with a Policy, which brings its own retry and timeout; "
                    "give either the decorated function or retry=/timeout=, not both"
                )
                raise TypeError(msg)
            inner, retry, timeout = parts
            return self._spec(inner, retry, timeout, fn)
        return self._spec(job_function(fn, what="submit()"), retry, timeout, fn)

    def _spec(self, fn: JobFunction, retry: Retry | None, timeout: float | None, given: object) -> Spec:
        key: tuple[Any, ...] | None = (fn, retry, timeout)
        try:
            hash(key)
        except TypeError:  # an unhashable callable: nothing to share
            key = None
        spec = None if key is None else self._by_call.pop(key, None)  # re-inserted: most recent last
        if spec is None:
            spec = self._registered_spec(fn) if retry is None and timeout is None else None
            if spec is None:
                self._count += 1
                spec = Spec(f"local:{self._origin}:{self._count}", fn, retry, timeout)
        self._remember(spec, key)
        if spec.in_place and given is fn:
            self._last_fn = fn
            self._last_spec = spec
        return spec

    def _registered_spec(self, fn: JobFunction) -> Spec | None:
        return next((spec for spec in self._registered.values() if spec.fn is fn), None)

    def _remember(self, spec: Spec, key: tuple[Any, ...] | None) -> None:
        """Keep *spec* for ``retry`` of finished jobs, most recently used last, within a bound.

        Fresh closures or partials per submission must not grow memory forever; a
        job whose function was forgotten can still be retried once it is registered.
        """
        if not spec.registered:
            local = self._local
            local.pop(spec.key, None)
            local[spec.key] = spec
            if len(local) > MAX_LOCAL_SPECS:
                del local[next(iter(local))]
        if key is not None:
            by_call = self._by_call
            by_call[key] = spec
            if len(by_call) > MAX_LOCAL_SPECS:
                del by_call[next(iter(by_call))]

    def for_retry(self, record: JobRecord) -> Spec:
        """The spec a stored job names.

        Raises:
            JobError: This manager does not know it (not registered here, or forgotten).
        """
        spec = self._registered.get(record.function) or self._local.get(record.function)
        if spec is None:
            msg = (
                f"cannot retry job {record.name!r} ({record.id}): its function {record.function!r} is not "
                "known to this manager; register it with jobs.register(fn, name)"
            )
            raise JobError(msg, job_id=record.id)
        return spec

    def labels(self, labels: Mapping[str, str]) -> Mapping[str, str]:
        """Validated, read-only labels; jobs with equal labels share one mapping (memory)."""
        checked = check_labels(labels)
        if not checked:
            return checked
        key = tuple(checked.items())
        cached = self._labels.get(key)
        if cached is not None:
            return cached
        if len(self._labels) < MAX_INTERNED_LABELS:
            self._labels[key] = checked
        return checked
