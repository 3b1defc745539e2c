"""A real server for the web tests: uvicorn on loopback, a JobManager over an SQLite file.

Run: ``python serve_app.py DB_PATH PORT [KEEPALIVE]`` (PORT 0: any free port). It prints
``listening PORT`` once its socket accepts connections. Besides the API (mounted at ``/``)
it answers ``GET /test/streams`` with how many ``/api/events`` responses are in flight, so
a test sees from outside when the server noticed a disconnect.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import anyio
import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from anyjob import Context, JobManager, instrumentation
from anyjob.stores import SQLiteStore
from anyjob.web import create_app

_failed_once: set[str] = set()


async def echo(ctx: Context) -> Any:
    ctx.set_progress(1.0, "done")
    return ctx.params


async def steps(ctx: Context) -> dict[str, int]:
    count = int(ctx.params.get("steps", 10))
    pause = float(ctx.params.get("pause", 0.05))
    for step in range(1, count + 1):
        await anyio.sleep(pause)
        ctx.set_progress(step / count, f"step {step} of {count}")
    return {"steps": count}


async def hang(ctx: Context) -> None:
    ctx.set_progress(0.3, "waiting for a cancel")
    await anyio.sleep_forever()


async def flaky(ctx: Context) -> str:
    """Fails its first attempt, succeeds when retried."""
    if ctx.id not in _failed_once:
        _failed_once.add(ctx.id)
        msg = "the first attempt always fails"
        raise RuntimeError(msg)
    return "fine the second time"


class TestServer:
    """The API itself at ``/`` (not under a Mount: every path reaches it as it came), the
    manager entered in the lifespan, and ``GET /test/streams``: how many ``/api/events``
    responses are in flight. Pure ASGI, as the API is."""

    def __init__(self, jobs: JobManager, keepalive: float) -> None:
        self.jobs = jobs
        self.api = create_app(jobs, keepalive=keepalive)
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http" and scope["path"] == "/test/streams":
            await JSONResponse({"open": self.open})(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == "/api/events":
            self.open += 1
            try:
                await self.api(scope, receive, send)
            finally:
                self.open -= 1
        else:
            await self.api(scope, receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        async with self.jobs:
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})


def build(db: str, keepalive: float) -> ASGIApp:
    jobs = JobManager(SQLiteStore(db, poll_interval=0.02), shutdown_timeout=0)
    for fn in (echo, steps, hang, flaky):
        jobs.register(fn, fn.__name__)
    return TestServer(jobs, keepalive)


def main() -> None:
    db, port = sys.argv[1], int(sys.argv[2])
    keepalive = float(sys.argv[3]) if len(sys.argv) > 3 else 15.0
    instrumentation.set_hooks([])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    config = uvicorn.Config(
        build(db, keepalive), log_level="warning", timeout_graceful_shutdown=1, lifespan="on"
    )
    print(f"listening {sock.getsockname()[1]}", flush=True)  # noqa: T201 - the parent reads it
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
