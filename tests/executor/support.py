"""Job functions shared by the executor tests (import as ``tests.executor.support``)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel

from anyjob import Context


class Flaky:
    """Fails ``failures`` times (with ``error``), then returns ``value``; records attempt times."""

    def __init__(
        self, failures: int, error: type[BaseException] = ConnectionError, value: Any = "ok"
    ) -> None:
        self.failures = failures
        self.error = error
        self.value = value
        self.calls = 0
        self.times: list[float] = []

    async def __call__(self, ctx: Context) -> Any:
        self.calls += 1
        self.times.append(anyio.current_time())
        await anyio.lowlevel.checkpoint()
        if self.calls <= self.failures:
            msg = f"failure {self.calls}"
            raise self.error(msg)
        return self.value


async def never_returns(ctx: Context) -> None:
    await anyio.sleep_forever()


class Hang:
    """Never returns; counts its calls and says when it has started."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.calls = 0

    async def __call__(self, ctx: Context) -> None:
        self.calls += 1
        self.entered.set()
        await anyio.sleep_forever()
