"""Fixtures of the web tests: the anyio backend a TestClient runs the app (and manager) on."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the in-process app runs on: asyncio and trio, every test."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _quiet(silent: None) -> None:
    """The web tests run many jobs: anyjob's logging stays silent (restored after each test)."""
