from __future__ import annotations

from collections.abc import Iterator

import pytest

from anyjob import instrumentation
from anyjob._executor import TestingMode, set_testing_mode


@pytest.fixture(
    params=[pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")],
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """asyncio and trio; ``"mock"`` (by indirect parametrization) is trio with a MockClock."""
    if request.param == "mock":
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _isolate_process_settings() -> Iterator[None]:
    """Every test starts with the default hooks and testing mode off, and leaves them so."""
    instrumentation.reset_hooks()
    set_testing_mode(TestingMode())
    yield
    instrumentation.reset_hooks()
    set_testing_mode(TestingMode())


@pytest.fixture
def silent() -> None:
    """Silence anyjob's logging for tests that run many jobs (restored by the autouse fixture)."""
    instrumentation.set_hooks([])
