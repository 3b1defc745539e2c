"""The HTTP API and the live dashboard in a FastAPI application, the manager in its lifespan.

Run it: ``python docs/examples/web_dashboard.py`` starts the server on a free port of
127.0.0.1, plays a browser's part over HTTP (submit, watch the stream, cancel, retry) and
stops. ``python docs/examples/web_dashboard.py --serve`` keeps it running on
http://127.0.0.1:8000/jobs/ with jobs coming in: open it in a browser (Ctrl-C stops it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import sys
from collections.abc import AsyncGenerator

import anyio
import httpx
import uvicorn
from fastapi import FastAPI

import anyjob
import anyjob.instrumentation
from anyjob.web import create_app

jobs = anyjob.JobManager(max_concurrency=3)


async def thumbnails(ctx: anyjob.Context) -> dict[str, int]:
    """Some work that reports its progress."""
    images = int(ctx.params.get("images", 10))
    for done in range(1, images + 1):
        await anyio.sleep(float(ctx.params.get("pause", 0.02)))
        ctx.set_progress(done / images, f"{done} of {images} images")
    return {"thumbnails": images}


async def flaky_upload(ctx: anyjob.Context) -> str:
    """Fails on its first attempt (a retry from the dashboard succeeds)."""
    info = await jobs.get(ctx.id)
    if info is not None and info.attempts <= 1:
        msg = "the storage service timed out"
        raise ConnectionError(msg)
    return "uploaded"


jobs.register(thumbnails, "thumbnails")
jobs.register(flaky_upload, "upload")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
    async with jobs:  # the manager lives exactly as long as the server
        yield


app = FastAPI(lifespan=lifespan)
app.mount("/jobs", create_app(jobs))


async def browse(base: str) -> None:
    """What the dashboard does, in a few requests."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        async with client.stream("GET", "/jobs/api/events") as events:
            lines = events.aiter_lines()
            ref = (
                await client.post("/jobs/api/jobs", json={"name": "thumbnails", "params": {"images": 4}})
            ).json()
            print("submitted", ref["name"])
            async for line in lines:  # the stream: one JobEvent per data line
                if not line.startswith("data: "):
                    continue
                event = json.loads(line.removeprefix("data: "))
                if event.get("job_id") != ref["id"]:
                    continue
                print(f"  {event['state']:<9} {event['progress']:4.0%}  {event['message'] or ''}")
                if event["state"] == "succeeded":
                    break
        upload = (await client.post("/jobs/api/jobs", json={"name": "upload"})).json()
        info = await jobs.wait(upload["id"], timeout=10)
        assert info is not None
        print("upload:", info.state.value, f"({info.error_type}: {info.error})")
        retried = await client.post(f"/jobs/api/jobs/{upload['id']}/retry")
        print("retry:", retried.status_code)
        info = await jobs.wait(upload["id"], timeout=10)
        assert info is not None
        print("upload:", info.state.value, "after", info.attempts, "attempts")
        again = await client.post(f"/jobs/api/jobs/{upload['id']}/retry")
        print("retry again:", again.status_code, again.json()["error"]["type"])
        stats = (await client.get("/jobs/api/stats")).json()
        print("succeeded:", stats["by_state"]["succeeded"], "failed:", stats["by_state"]["failed"])


async def keep_submitting() -> None:
    """For --serve: a steady trickle of jobs to watch."""
    while True:
        await jobs.submit("thumbnails", {"images": random.randint(20, 60), "pause": 0.2})
        if random.random() < 0.3:
            await jobs.submit("upload")
        await anyio.sleep(random.uniform(1, 4))


async def main(*, serve: bool) -> None:
    port = 8000 if serve else 0
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, it offers no event
            await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        if serve:
            print(f"the dashboard: http://127.0.0.1:{port}/jobs/  (Ctrl-C stops)")
            await keep_submitting()
        await browse(f"http://127.0.0.1:{port}")
        server.should_exit = True


if __name__ == "__main__":
    anyjob.instrumentation.set_hooks([])  # the example prints what it does itself
    anyio.run(functools.partial(main, serve="--serve" in sys.argv[1:]))
