"""Policy: executor settings composed once and applied to many jobs or functions."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Generic, TypeVar, final, overload

import attrs

from anyjob._executor import Executor
from anyjob._functions import job_function
from anyjob._job import Context, Job
from anyjob._retry import Retry, as_retry
from anyjob._time import to_seconds

__all__ = ["Policy", "PolicyFunction"]

R = TypeVar("R")


def _optional_timeout(value: float | timedelta | None) -> float | None:
    return None if value is None else to_seconds(value, "timeout", allow_inf=True)


def _optional_cooldown(value: float | timedelta | None) -> float | None:
    return None if value is None else to_seconds(value, "cooldown", allow_inf=True)


def _check_once(_inst: object, _attr: object, value: object) -> None:
    if not isinstance(value, bool):
        msg = f"once must be a bool, not {type(value).__name__}"
        raise TypeError(msg)


@final
@attrs.frozen
class Policy:
    """Executor settings composed once, applied to many jobs or functions.

    A library defines its policy in one place::

        NETWORK = anyjob.Policy(retry=anyjob.Retry(5, delay=0.2, jitter=0.1), timeout=10)

        ex = NETWORK.executor(job)        # an Executor for an existing Job
        ex = NETWORK.executor(fetch)      # a Job made from a function, then its Executor

        @NETWORK                          # a function that runs as a fresh job each call
        async def fetch(ctx: anyjob.Context) -> bytes: ...

        data = await fetch("https://example.org")   # params -> ctx.params

    Policies are values: ``attrs.evolve(NETWORK, timeout=30)`` derives another.

    Args:
        retry: As for :class:`~anyjob.Executor` (a :class:`~anyjob.Retry`, an int or ``None``).
        timeout: Per-attempt timeout, or ``None``.
        cooldown: Cooldown between starts, or ``None``. Needs a long-lived executor,
            so it applies to :meth:`executor` only.
        once: Once-only; like *cooldown*, for :meth:`executor` only.

    Raises:
        ValueError, TypeError: Invalid values, when the policy is built.
    """

    retry: Retry | None = attrs.field(default=None, converter=as_retry)
    timeout: float | None = attrs.field(default=None, converter=_optional_timeout)
    cooldown: float | None = attrs.field(default=None, converter=_optional_cooldown)
    once: bool = attrs.field(default=False, validator=_check_once)

    @overload
    def executor(self, target: Job[R]) -> Executor[R]: ...

    @overload
    def executor(
        self,
        target: Callable[[Context], Awaitable[R]],
        *,
        id: str | None = None,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Executor[R]: ...

    def executor(
        self,
        target: Job[R] | Callable[[Context], Awaitable[R]],
        *,
        id: str | None = None,  # noqa: A002 - the Job's own argument name
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Executor[R]:
        """Build an :class:`~anyjob.Executor` with this policy.

        Args:
            target: A :class:`~anyjob.Job`, or an ``async def fn(ctx)`` to make one from.
            id: For a function: the new job's id.
            name: For a function: the new job's name.
            labels: For a function: the new job's labels.

        Raises:
            TypeError: *id*, *name* or *labels* given together with a Job; a target
                that is not ``async def fn(ctx)`` (a function decorated with a Policy
                included: give its undecorated function, ``fn.__wrapped__``).
        """
        if isinstance(target, Job):
            if id is not None or name is not None or labels is not None:
                msg = "id, name and labels apply when the target is a function, not an existing Job"
                raise TypeError(msg)
            job: Job[R] = target
        else:
            job = Job(job_function(target, what="Policy.executor()"), id=id, name=name, labels=labels)
        return Executor(job, retry=self.retry, timeout=self.timeout, cooldown=self.cooldown, once=self.once)

    def __call__(self, fn: Callable[[Context], Awaitable[R]]) -> PolicyFunction[R]:
        """Decorate ``async def fn(ctx)`` so that each call runs it as a fresh job under this policy.

        Raises:
            TypeError: *fn* is not ``async def fn(ctx)`` (a function already decorated
                with a Policy included: decorate the function once).
            ValueError: The policy has a cooldown or is once-only: those need one
                long-lived executor (use :meth:`executor`), not one per call.
        """
        fn = job_function(fn, what="@Policy")
        if self.cooldown is not None or self.once:
            msg = (
                "a decorated function runs a fresh executor per call, so cooldown and once "
                "cannot apply; build one long-lived executor with Policy.executor() instead"
            )
            raise ValueError(msg)
        return PolicyFunction(fn, self)


@final
class PolicyFunction(Generic[R]):
    """A function decorated with a :class:`Policy`: each call is a fresh job under that policy.

    ``await f(params)`` returns the result or raises what
    :meth:`Executor.start <anyjob.Executor.start>` raises.

    It is not a job function itself: ``Job``, ``Policy.executor`` and the manager's
    ``submit`` refuse it (retries would nest). Its parts stay reachable:

    Attributes:
        fn: The undecorated function (also ``__wrapped__``), to give to ``Job`` or ``submit``.
        policy: The :class:`Policy`, whose ``retry`` and ``timeout`` go with it.
    """

    __slots__ = ("__dict__", "__wrapped__", "fn", "policy")

    def __init__(self, fn: Callable[[Context], Awaitable[R]], policy: Policy) -> None:
        job_function(fn, what="PolicyFunction()")
        self.fn: Callable[[Context], Awaitable[R]] = fn
        self.policy = policy
        functools.update_wrapper(self, fn)

    async def __call__(
        self,
        params: Any = None,
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> R:
        """Run the function once as a new job under the policy and return its result."""
        return await self.policy.executor(self.fn, name=name, labels=labels).start(params)

    def job(self, *, name: str | None = None, labels: Mapping[str, str] | None = None) -> Job[R]:
        """A new :class:`~anyjob.Job` for the function (to track it yourself)."""
        return Job(self.fn, name=name, labels=labels)
