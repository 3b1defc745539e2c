"""A web application starts an import from a request handler; the browser polls its progress.

Run it: ``python docs/examples/web_app.py``

To stay runnable with nothing but anyjob installed, the "web framework" here is a
few lines of HTTP on anyio's TCP listener. With Starlette, FastAPI, Quart or any
other framework the handlers are the same three lines each: see docs/applications.md.
The ``main`` function plays the browser.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc

import anyjob

jobs: anyjob.JobManager  # made in serve(): one manager for the whole application


async def import_rows(ctx: anyjob.Context) -> dict[str, int]:
    """The long-running work a request starts: report progress as it goes."""
    rows = int(ctx.params["rows"])
    for done in range(1, rows + 1):
        await anyio.sleep(0.02)  # parse and store one row
        ctx.set_progress(done / rows, f"imported {done} of {rows} rows")
    return {"imported": rows}


# -- the handlers: this is all an application needs ---------------------------------------


async def start_import(query: dict[str, str]) -> tuple[int, Any]:
    ref = await jobs.submit(import_rows, {"rows": int(query.get("rows", "10"))}, labels={"kind": "import"})
    return 202, {"id": ref.id, "status": f"/jobs/{ref.id}"}


async def job_status(job_id: str) -> tuple[int, Any]:
    info = await jobs.get(job_id)
    if info is None:
        return 404, {"error": f"no job {job_id}"}
    return 200, info.to_dict()


async def cancel_job(job_id: str) -> tuple[int, Any]:
    try:
        canceled = await jobs.cancel(job_id)
    except anyjob.JobNotFoundError:
        return 404, {"error": f"no job {job_id}"}
    return 200, {"canceled": canceled}


async def list_jobs(query: dict[str, str]) -> tuple[int, Any]:
    state = anyjob.State(query["state"]) if "state" in query else None
    return 200, [info.to_dict() for info in await jobs.list(state=state, limit=20)]


# -- a minimal HTTP server (a framework does this part for you) ------------------------------


async def route(method: str, target: str) -> tuple[int, Any]:
    url = urlsplit(target)
    query = {key: values[-1] for key, values in parse_qs(url.query).items()}
    parts = [part for part in url.path.split("/") if part]
    if method == "POST" and parts == ["imports"]:
        return await start_import(query)
    if method == "GET" and parts == ["jobs"]:
        return await list_jobs(query)
    if len(parts) == 2 and parts[0] == "jobs":
        if method == "GET":
            return await job_status(parts[1])
        if method == "DELETE":
            return await cancel_job(parts[1])
    return 404, {"error": "not found"}


async def handle(client: anyio.abc.SocketStream) -> None:
    async with client:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await client.receive()
        method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
        status, payload = await route(method, target)
        body = json.dumps(payload).encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        await client.send(head.encode() + body)


async def serve(*, task_status: anyio.abc.TaskStatus[int]) -> None:
    global jobs
    async with anyjob.JobManager(max_concurrency=4, retention=3600) as jobs:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(handle)


# -- the browser ------------------------------------------------------------------------------


async def request(port: int, method: str, target: str) -> tuple[int, Any]:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        response = b""
        while b"\r\n\r\n" not in response or len(response.split(b"\r\n\r\n", 1)[1]) < int(
            response.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0]
        ):
            response += await stream.receive()
        head, body = response.split(b"\r\n\r\n", 1)
        return int(head.split(b" ")[1]), json.loads(body)


async def main() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve)
        status, started = await request(port, "POST", "/imports?rows=15")
        print(status, started)
        while True:  # what the browser's progress bar does
            _, info = await request(port, "GET", started["status"])
            print(f"  {info['state']:<10} {info['progress']:4.0%}  {info['message']}")
            if info["state"] in {"succeeded", "failed", "canceled"}:
                break
            await anyio.sleep(0.1)
        print("result:", info["result"], f"in {info['duration']:.2f} s")

        _, second = await request(port, "POST", "/imports?rows=1000")
        await anyio.sleep(0.1)
        print("cancel:", await request(port, "DELETE", second["status"]))
        await anyio.sleep(0.1)
        print("after cancel:", (await request(port, "GET", second["status"]))[1]["state"])
        print("unknown job:", await request(port, "GET", "/jobs/does-not-exist"))
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyjob.instrumentation.set_hooks([])  # the example prints what it does itself
    anyio.run(main)
