"""What a job function is (anyjob._functions): one check, one name rule, Policy taken apart."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import anyjob
from anyjob import Context, Job, Policy, PolicyFunction, Retry
from anyjob._functions import default_name, job_function, policy_parts


async def takes_ctx(ctx: Context) -> int:
    return 1


async def takes_ctx_and_default(ctx: Context, extra: int = 2) -> int:
    return extra


async def takes_varargs(*args: Any) -> int:
    return len(args)


async def takes_two(ctx: Context, other: int) -> int:
    return other


async def takes_nothing() -> int:
    return 1


async def takes_ctx_and_keyword(ctx: Context, *, key: str) -> str:
    return key


def sync_fn(ctx: Context) -> int:
    return 1


class AsyncCallable:
    async def __call__(self, ctx: Context) -> str:
        return "called"


class SyncCallable:
    def __call__(self, ctx: Context) -> str:
        return "called"


class Methods:
    async def method(self, ctx: Context) -> str:
        return "method"


RETRY = Retry(3, delay=0)
POLICY = Policy(retry=RETRY, timeout=5)


@POLICY
async def decorated(ctx: Context) -> str:
    return "decorated"


# -- accepted -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        takes_ctx,
        takes_ctx_and_default,
        takes_varargs,
        functools.partial(takes_two, other=3),
        functools.partial(functools.partial(takes_ctx_and_keyword, key="k")),
        AsyncCallable(),
        Methods().method,
        anyjob.wrap(takes_nothing),
    ],
    ids=["plain", "default", "varargs", "partial", "nested-partial", "callable", "method", "wrap"],
)
def test_job_functions_are_returned_unchanged(fn: Any) -> None:
    assert job_function(fn, what="Job()") is fn
    assert Job(fn).name  # Job accepts the same


# -- refused, with what was given and what to do ------------------------------------------


@pytest.mark.parametrize(
    ("fn", "fragments"),
    [
        (42, ["not callable", "42", "int", "async def"]),
        ("takes_ctx", ["not callable", "'takes_ctx'", "async def"]),
        (sync_fn, ["'sync_fn'", "not async", "must be an async def function taking a Context"]),
        (lambda ctx: None, ["lambda", "must be an async def function taking a Context"]),
        (SyncCallable(), ["SyncCallable", "must be an async def function taking a Context"]),
        (Methods, ["class", "Methods", "must be an async def function taking a Context"]),
        (takes_nothing, ["'takes_nothing'", "use anyjob.wrap(f)"]),
        (takes_two, ["'takes_two'", "(ctx: 'Context', other: 'int')", "exactly one positional argument"]),
        (takes_ctx_and_keyword, ["takes_ctx_and_keyword", "exactly one positional argument"]),
        (
            decorated,
            [
                "'decorated'",
                (
                    "is decorated with a Policy; submit/run the undecorated function (fn.__wrapped__) "
                    "and give the policy's retry/timeout, never both"
                ),
            ],
        ),
        (functools.partial(decorated), ["decorated with a Policy"]),
    ],
    ids=[
        "int",
        "str",
        "sync",
        "lambda",
        "sync-callable",
        "class",
        "no-args",
        "two-args",
        "keyword-only",
        "policy-function",
        "partial-of-policy-function",
    ],
)
def test_everything_else_is_refused_with_a_message_saying_what_to_do(fn: Any, fragments: list[str]) -> None:
    with pytest.raises(TypeError) as info:
        job_function(fn, what="Job()")
    message = str(info.value)
    assert message.startswith("Job()")
    for fragment in fragments:
        assert fragment in message
    with pytest.raises(TypeError, match=r"^Job\(\)"):
        Job(fn)


def test_policy_refuses_a_policy_function_everywhere() -> None:
    # Before: Job(decorated) and Policy.executor(decorated) type-checked, ran with
    # ctx.params being a Context and nested retries (2 attempts recorded, 5 runs).
    with pytest.raises(TypeError, match="decorated with a Policy"):
        Job(decorated)
    with pytest.raises(TypeError, match=r"^Policy\.executor\(\).*decorated with a Policy"):
        POLICY.executor(decorated)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^@Policy.*decorated with a Policy"):
        POLICY(decorated)
    with pytest.raises(TypeError, match=r"use anyjob\.wrap"):
        POLICY(takes_nothing)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not async"):
        POLICY.executor(sync_fn)  # type: ignore[call-overload]
    assert decorated.job().name == "decorated"  # its own job is of the undecorated function


def test_a_policy_function_keeps_its_parts_reachable() -> None:
    assert isinstance(decorated, PolicyFunction)
    assert decorated.__wrapped__ is decorated.fn
    assert decorated.policy is POLICY
    assert policy_parts(decorated) == (decorated.fn, RETRY, 5.0)
    assert job_function(decorated.__wrapped__, what="Job()") is decorated.fn
    assert decorated.__qualname__ == "decorated"


@pytest.mark.parametrize("fn", [takes_ctx, AsyncCallable(), functools.partial(decorated), sync_fn, 42])
def test_policy_parts_is_none_for_anything_else(fn: object) -> None:
    assert policy_parts(fn) is None


# -- the default name ---------------------------------------------------------------------


def test_default_name_is_the_one_rule() -> None:
    assert default_name(takes_ctx) == "takes_ctx"
    assert default_name(Methods().method) == "Methods.method"
    assert default_name(functools.partial(functools.partial(takes_two, other=1))) == "takes_two"
    assert default_name(AsyncCallable()) == "AsyncCallable"
    assert default_name(anyjob.wrap(takes_nothing)) == "takes_nothing"
    assert default_name(decorated) == "decorated"
    # Job uses it: a partial is named after its function, not "partial".
    assert Job(functools.partial(takes_two, other=1)).name == "takes_two"
    assert Job(AsyncCallable()).name == "AsyncCallable"


def test_an_empty_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="name"):
        Job(takes_ctx, name="")
    with pytest.raises(TypeError, match="name"):
        Job(takes_ctx, name=b"x")  # type: ignore[arg-type]
