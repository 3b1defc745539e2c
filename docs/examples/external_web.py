"""A web request creates a job, a worker in another process does it and reports into it, the browser polls.

Run it: ``python docs/examples/external_web.py``

The web process never runs the work: ``POST /exports`` records an external job
(``jobs.create``) and hands its id to a worker process (external_worker.py, started
here with ``sys.executable``; its standard input stands in for a real queue). The
worker opens its own JobManager over the same SQLite file and reports into the job by
id; ``GET /jobs/{id}`` reads it back, whichever process wrote it. ``DELETE`` cancels
it (the cancel reaches the worker at its next report), ``POST /jobs/{id}/retry``
puts a failed or canceled one back for a worker.

As in web_app.py the "web framework" is a few lines of HTTP on anyio's TCP listener,
so nothing but anyjob is needed; with a real framework the handlers are the same.
The ``main`` function plays the browser, one round per outcome: succeeded, failed,
canceled, retried, and lost (the worker process dies; ``stale_after`` ends the job).
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc

import anyjob
from anyjob.stores import SQLiteStore

WORKER = Path(__file__).with_name("external_worker.py")
#: A RUNNING export with no report for this long ends FAILED (JobLostError): its worker
#: is gone. Short for the demonstration; in production a few heartbeat intervals.
STALE_AFTER = 1.0
DONE = {"succeeded", "failed", "canceled"}

jobs: anyjob.JobManager  # made in serve(): one manager for the whole application
worker: anyio.abc.Process  # the worker process; its stdin is the queue


async def hand_over(job_id: str) -> None:
    """Put the job's id on the queue: exactly one worker takes it."""
    assert worker.stdin is not None
    await worker.stdin.send(f"{job_id}\n".encode())


# -- the handlers: this is all an application needs ---------------------------------------


async def start_export(query: dict[str, str]) -> tuple[int, Any]:
    ref = await jobs.create(
        "export",
        {"rows": int(query.get("rows", "10"))},
        labels={"kind": "export"},
        message="waiting for a worker",
        stale_after=STALE_AFTER,
    )
    try:
        await hand_over(ref.id)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await jobs.cancel(ref.id)  # no worker will ever take it: CREATED -> CANCELED at once
        raise
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


async def retry_job(job_id: str) -> tuple[int, Any]:
    try:
        ref = await jobs.retry(job_id)
    except anyjob.JobNotFoundError:
        return 404, {"error": f"no job {job_id}"}
    except anyjob.JobStateError as exc:
        return 409, {"error": str(exc)}
    await hand_over(ref.id)  # CREATED again: no worker knows until it is handed over again
    return 202, {"id": ref.id, "status": f"/jobs/{ref.id}"}


# -- a minimal HTTP server (a framework does this part for you) ------------------------------


async def route(method: str, target: str) -> tuple[int, Any]:
    url = urlsplit(target)
    query = {key: values[-1] for key, values in parse_qs(url.query).items()}
    parts = [part for part in url.path.split("/") if part]
    if method == "POST" and parts == ["exports"]:
        return await start_export(query)
    if len(parts) == 2 and parts[0] == "jobs":
        if method == "GET":
            return await job_status(parts[1])
        if method == "DELETE":
            return await cancel_job(parts[1])
    if method == "POST" and len(parts) == 3 and parts[0] == "jobs" and parts[2] == "retry":
        return await retry_job(parts[1])
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


async def serve(db: Path, *, task_status: anyio.abc.TaskStatus[int]) -> None:
    global jobs, worker
    async with (
        anyjob.JobManager(SQLiteStore(db), retention=3600) as jobs,
        await anyio.open_process([sys.executable, WORKER, db], stdout=None, stderr=None) as worker,
    ):
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


async def poll(port: int, url: str, *, until: set[str] = DONE) -> dict[str, Any]:
    """What the browser's progress bar does: GET until the state is one of *until*."""
    shown = ""
    with anyio.fail_after(30):
        while True:
            _, answer = await request(port, "GET", url)
            info: dict[str, Any] = answer
            text = info["error"] or info["message"] or ""
            line = f"    {info['state']:<10} {info['progress']:4.0%}  {text}"
            if line != shown:  # print what changed, not every poll
                print(line)
                shown = line
            if info["state"] in until:
                return info
            await anyio.sleep(0.1)


async def post(port: int, target: str) -> str:
    status, answer = await request(port, "POST", target)
    print(f"POST {target} -> {status} {answer}")
    return str(answer["status"])


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with anyio.create_task_group() as tg:
            port = await tg.start(serve, Path(tmp) / "jobs.db")

            print("1. an export that succeeds")
            info = await poll(port, await post(port, "/exports?rows=10"))
            print(f"   result: {info['result']}, in {info['duration']:.2f} s")

            print("2. an export whose work raises")
            info = await poll(port, await post(port, "/exports?rows=0"))
            print(f"   {info['error_type']}: {info['error']}")

            print("3. an export canceled while the worker runs it")
            url = await post(port, "/exports?rows=40")
            await poll(port, url, until={"running"})
            print("   DELETE ->", await request(port, "DELETE", url))
            info = await poll(port, url)

            print("4. the canceled export, retried")
            info = await poll(port, await post(port, f"{url}/retry"))
            print(f"   result: {info['result']}, attempts: {info['attempts']}")

            print("5. an export whose worker dies")
            url = await post(port, "/exports?rows=1000")
            await poll(port, url, until={"running"})
            worker.kill()  # the worker's machine goes away: nobody reports any more
            print("   worker process killed, exit code", await worker.wait())
            info = await poll(port, url)
            print(f"   {info['error_type']}: {info['error']}")
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    if isinstance(sys.stdout, io.TextIOWrapper):  # the worker's lines and ours in order, even in a pipe
        sys.stdout.reconfigure(line_buffering=True)
    anyjob.instrumentation.set_hooks([])  # the example prints what it does itself
    anyio.run(main)
