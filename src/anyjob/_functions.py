"""What a job function is: the one place that checks one, names one, and takes a Policy apart.

A *job function* is ``async def fn(ctx: anyjob.Context) -> R``: a coroutine
function, a :func:`functools.partial` of one, a bound method, or an object whose
``__call__`` is ``async def``, callable with exactly one positional argument.
:class:`~anyjob.Job`, :class:`~anyjob.Policy` and the manager's ``submit`` and
``register`` all ask :func:`job_function`, so they accept and refuse the same
things with the same words. :func:`wrap` adapts an async function without a context.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import FunctionType
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar, cast

from anyjob._context import Context

if TYPE_CHECKING:
    from anyjob._retry import Retry

__all__ = ["JobFunction", "default_name", "job_function", "policy_parts", "wrap"]

#: ``async def fn(ctx: Context) -> R``.
JobFunction: TypeAlias = "Callable[[Context], Awaitable[Any]]"

R = TypeVar("R")

_CO_COROUTINE: Final = inspect.CO_COROUTINE
_CO_VARARGS: Final = inspect.CO_VARARGS
_WHAT_TO_WRITE: Final = "an async def function taking a Context (async def fn(ctx): ...)"


def _is_policy_function(fn: object) -> bool:
    # Imported here: anyjob._policy builds on Job, which builds on this module.
    from anyjob._policy import PolicyFunction  # noqa: PLC0415 - see above

    while isinstance(fn, functools.partial):
        fn = fn.func  # pyright: ignore[reportUnknownMemberType]
    return isinstance(fn, PolicyFunction)


def _describe(fn: object) -> str:
    """How *fn* is named in an error message: its name and kind, never a huge repr."""
    name = default_name(fn)
    if inspect.isclass(fn):
        return f"the class {name!r}"
    if isinstance(fn, functools.partial):
        return f"a functools.partial of {name!r}"
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        return f"{'the lambda' if name.endswith('<lambda>') else 'the function'} {name!r}"
    if _is_policy_function(fn):
        return f"the function {name!r}"
    if callable(fn):
        return f"a {type(fn).__qualname__} object"
    text = repr(fn) if isinstance(fn, str | int | float | bytes | bool | type(None)) else ""
    return f"{text[:60]} ({type(fn).__qualname__})" if text else f"a {type(fn).__qualname__} object"


def _is_async(fn: object) -> bool:
    if inspect.iscoroutinefunction(fn):  # functions, bound methods, partials of them
        return True
    if inspect.isclass(fn) or inspect.isfunction(fn) or inspect.ismethod(fn):
        return False
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - the class's __call__, not callable()
    return call is not None and inspect.iscoroutinefunction(call)


def job_function(fn: object, *, what: str) -> JobFunction:
    """Return *fn* when it is ``async def fn(ctx)``; otherwise raise a TypeError saying what to do.

    Accepted: a coroutine function, a :func:`functools.partial` of one, a bound
    method, or an object whose ``__call__`` is ``async def``, that can be called
    with exactly one positional argument (the :class:`~anyjob.Context`).

    Args:
        fn: What the caller was given.
        what: The call that was given it, for the message (``"Job()"``, ``"submit()"``).

    Returns:
        *fn* itself, unchanged.

    Raises:
        TypeError: *fn* is not callable, is a sync function or lambda, takes no
            argument (use :func:`anyjob.wrap`) or more than one, or is a function
            decorated with a :class:`~anyjob.Policy` (a
            :class:`~anyjob.PolicyFunction`: give the undecorated function and the
            policy's retry/timeout instead, never both).
    """
    global _last_accepted  # a one-entry memo, see below
    if fn is _last_accepted:
        # Jobs are mostly made from the same few functions, one after another: the
        # memo saves the code checks (~50 ns of a Job's ~1 us; benchmarks/bench_job.py).
        return fn  # type: ignore[return-value]
    if type(fn) is FunctionType:
        # The common case, decided from the code object alone: an ``async def f(ctx)``
        # with no *args and no keyword-only parameters.
        code = fn.__code__
        if code.co_flags & _CO_COROUTINE and code.co_argcount == 1 and not code.co_kwonlyargcount:
            _last_accepted = fn
            return fn  # no typing.cast here: a Python call on the hot path
    return _check_slowly(fn, what)


#: The plain function :func:`job_function` accepted last (it keeps one function alive).
_last_accepted: object = None


def _check_slowly(fn: object, what: str) -> JobFunction:
    if not callable(fn):
        msg = f"{what} needs {_WHAT_TO_WRITE}, got {_describe(fn)}, which is not callable"
        raise TypeError(msg)
    if _is_policy_function(fn):
        msg = (
            f"{what} was given {_describe(fn)}, which is decorated with a Policy; submit/run the "
            "undecorated function (fn.__wrapped__) and give the policy's retry/timeout, never both"
        )
        raise TypeError(msg)
    if not _is_async(fn):
        msg = (
            f"{what} was given {_describe(fn)}, which is not async; it must be an async def "
            "function taking a Context (async def fn(ctx): ...)"
        )
        raise TypeError(msg)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (some builtins): trust it
        return cast("JobFunction", fn)
    try:
        signature.bind(None)
    except TypeError:
        pass
    else:
        return cast("JobFunction", fn)
    try:
        signature.bind()
    except TypeError:
        advice = "it must accept exactly one positional argument, the Context"
    else:
        advice = "it takes no Context; use anyjob.wrap(f) to adapt an async function without arguments"
    msg = f"{what} was given {_describe(fn)} with the signature {signature}; {advice}"
    raise TypeError(msg)


def policy_parts(fn: object) -> tuple[JobFunction, Retry | None, float | None] | None:
    """Take a Policy-decorated function apart: ``(undecorated function, retry, timeout)``.

    The manager runs the undecorated function once per attempt under the policy's
    retry and timeout, so retries never nest.

    Returns:
        The parts for a :class:`~anyjob.PolicyFunction`; ``None`` for anything else.
    """
    if type(fn) is FunctionType:
        return None
    from anyjob._policy import PolicyFunction  # noqa: PLC0415 - see _is_policy_function

    if not isinstance(fn, PolicyFunction):
        return None
    policy_fn = cast("PolicyFunction[Any]", fn)  # type: ignore[redundant-cast] # for pyright: not Unknown
    policy = policy_fn.policy
    return policy_fn.fn, policy.retry, policy.timeout


def default_name(fn: object) -> str:
    """The default job name of *fn*: the one rule, used by Job and the manager.

    ``fn.__qualname__``; for a :func:`functools.partial`, its innermost function's;
    for anything else (a callable object), its type's qualified name.
    """
    if type(fn) is FunctionType:
        return fn.__qualname__
    while isinstance(fn, functools.partial):
        fn = fn.func  # pyright: ignore[reportUnknownMemberType]
    name = getattr(fn, "__qualname__", None)
    if isinstance(name, str) and name:
        return name
    return type(fn).__qualname__


def wrap(fn: Callable[[], Awaitable[R]]) -> Callable[[Context], Awaitable[R]]:
    """Adapt ``async def f() -> R`` to the ``async def fn(ctx) -> R`` a Job expects.

    The wrapper keeps ``f``'s name and qualified name, so the job's default name is ``f``'s.

    Raises:
        TypeError: *fn* is not callable.
    """
    if not callable(fn):
        msg = f"wrap() needs an async function, not {type(fn).__name__}"
        raise TypeError(msg)

    async def wrapper(ctx: Context) -> R:  # noqa: ARG001 - the job's calling convention
        return await fn()

    wrapper.__name__ = getattr(fn, "__name__", wrapper.__name__)
    wrapper.__qualname__ = getattr(fn, "__qualname__", wrapper.__qualname__)
    wrapper.__doc__ = getattr(fn, "__doc__", None)
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper
