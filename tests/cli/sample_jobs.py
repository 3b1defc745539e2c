"""Job functions the command-line tests run with ``anyjob run tests.cli.sample_jobs:NAME``."""

from __future__ import annotations

import anyio

import anyjob


async def count(ctx: anyjob.Context) -> dict[str, int]:
    """Count to ``params["n"]`` (default 3), reporting progress at each step."""
    n = (ctx.params or {}).get("n", 3)
    for i in range(n):
        await anyio.sleep(0.01)
        ctx.set_progress((i + 1) / n, f"step {i + 1}/{n}")
    return {"counted": n}


async def boom(ctx: anyjob.Context) -> None:
    """Fail with a recognisable error."""
    ctx.set_progress(0.5, "about to fail")
    msg = "it broke on purpose"
    raise RuntimeError(msg)


async def slow(ctx: anyjob.Context) -> None:
    """Report progress slowly, for ever (until canceled): what a person interrupts."""
    step = 0
    while True:
        step += 1
        ctx.set_progress(min(step / 1000, 0.99), f"tick {step}")
        await anyio.sleep(0.2)


async def stubborn(ctx: anyjob.Context) -> None:
    """Ignore cancellation: only a second Ctrl-C ends the command."""
    ctx.set_progress(0.25, "ignoring cancellation")
    with anyio.CancelScope(shield=True):
        await anyio.sleep(3600)


_calls: dict[str, int] = {}


async def flaky(ctx: anyjob.Context) -> str:
    """Fail on the first call of each job id, then succeed."""
    _calls[ctx.id] = _calls.get(ctx.id, 0) + 1
    if _calls[ctx.id] == 1:
        msg = "first call fails"
        raise ConnectionError(msg)
    return "ok"


def not_async(ctx: anyjob.Context) -> None:
    """Not a job function: ``anyjob run`` refuses it."""
