"""Job functions shared by the manager tests (import as ``tests.manager.support``).

Not a conftest: a second ``conftest.py`` outside a package would take the module name
``conftest`` from ``tests/conftest.py``, which test modules import helpers from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from anyjob import Context


class Gates:
    """Job functions that block until the test opens their gate (by params)."""

    def __init__(self) -> None:
        self.entered: dict[Any, anyio.Event] = {}
        self.release: dict[Any, anyio.Event] = {}
        self.order: list[Any] = []
        self.running = 0
        self.max_running = 0

    def _events(self, key: Any) -> tuple[anyio.Event, anyio.Event]:
        return (
            self.entered.setdefault(key, anyio.Event()),
            self.release.setdefault(key, anyio.Event()),
        )

    async def __call__(self, ctx: Context) -> Any:
        entered, release = self._events(ctx.params)
        self.order.append(ctx.params)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            entered.set()
            await release.wait()
        finally:
            self.running -= 1
        return ctx.params

    async def wait_entered(self, key: Any) -> None:
        await self._events(key)[0].wait()

    def open(self, key: Any) -> None:
        self._events(key)[1].set()


async def ok(ctx: Context) -> Any:
    return ctx.params


async def boom(ctx: Context) -> None:
    msg = "boom"
    raise ValueError(msg)


MakeStore = Callable[[], Any]
"""The ``make_store`` fixture's type: a factory of fresh stores of the kind under test."""


async def until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Return once *predicate()* holds (checked every millisecond; fails after a generous *timeout*).

    For facts no event announces (a manager's statistics snapshot, a record deleted by retention).
    """
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - nothing to wait on: the fact has no event
            await anyio.sleep(0.001)
