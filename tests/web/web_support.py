"""Helpers of the web tests: a manager with registered functions, an app over it, a client.

``served(...)`` gives a Starlette TestClient over an application whose lifespan enters
the manager (as ``docs/web.md`` shows), on the anyio backend asked for; the manager
lives in the client's event loop, reached from the test through ``client.portal``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import Mount

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 fork for its TestClient and warns once on import
    # when it finds httpx; the TestClient works the same over httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from anyjob import Context, JobInfo, JobManager, State
from anyjob.web import create_app

TIMEOUT = 20.0  # only catches a hang


async def echo(ctx: Context) -> Any:
    """Succeeds with its params."""
    ctx.set_progress(1.0, "done")
    return ctx.params


async def boom(ctx: Context) -> None:
    """Fails with ValueError."""
    msg = "boom"
    raise ValueError(msg)


async def hang(ctx: Context) -> None:
    """Reports halfway, then runs until canceled."""
    ctx.set_progress(0.5, "halfway")
    await anyio.sleep_forever()


def register_all(jobs: JobManager) -> JobManager:
    jobs.register(echo, "echo")
    jobs.register(boom, "boom")
    jobs.register(hang, "hang")
    return jobs


def lifespan_app(jobs: JobManager, api: Starlette, mount: str = "") -> Starlette:
    """An application that enters *jobs* in its lifespan and mounts *api* at *mount*."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with jobs:
            yield

    return Starlette(routes=[Mount(mount or "/", app=api)], lifespan=lifespan)


@contextlib.contextmanager
def served(
    backend: str, mount: str = "", jobs: JobManager | None = None, **options: Any
) -> Iterator[tuple[TestClient, JobManager]]:
    """A TestClient over ``create_app(jobs, **options)`` mounted at *mount*, the manager open."""
    jobs = register_all(JobManager(shutdown_timeout=0)) if jobs is None else jobs
    app = lifespan_app(jobs, create_app(jobs, **options), mount)
    with TestClient(app, backend=backend, base_url="http://testserver") as client:
        yield client, jobs


async def until_state(jobs: JobManager, job_id: str, *states: State) -> JobInfo:
    """Wait (on the job's events) until it is in one of *states*; its info then."""
    with anyio.fail_after(TIMEOUT):
        stream = jobs.events(job_id)
        try:
            info = await jobs.get(job_id)
            if info is not None and info.state in states:
                return info
            async for event in stream:
                if event.state in states:
                    info = await jobs.get(job_id)
                    assert info is not None
                    return info
        finally:
            stream.close()
    raise AssertionError("the manager closed first")


def wait_state(client: TestClient, jobs: JobManager, job_id: str, *states: State) -> JobInfo:
    """:func:`until_state` from the test's thread."""
    portal = client.portal
    assert portal is not None
    return portal.call(until_state, jobs, job_id, *states)


def error_of(response: Any, status: int, error_type: str) -> str:
    """Assert *response* is the JSON error body of *status* and *error_type*; its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return str(body["error"]["message"])
