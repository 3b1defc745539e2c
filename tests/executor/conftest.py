"""The executor tests run on asyncio in real time and on trio with a MockClock."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param("trio-mockclock", id="trio-mockclock"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """asyncio in real time; trio with a MockClock that jumps over every sleep at once."""
    if request.param == "trio-mockclock":
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def mock_clock(anyio_backend: tuple[str, dict[str, object]]) -> bool:
    return "clock" in anyio_backend[1]
