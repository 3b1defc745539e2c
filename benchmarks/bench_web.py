"""The HTTP API against a hand-written Starlette route doing the same query, measured with wrk.

Target (issue 11, default configuration: ``create_app(jobs)`` as a new user mounts it,
hooks as shipped): ``GET /api/jobs/{id}`` and ``GET /api/jobs?limit=50`` over an
SQLiteStore holding 100k finished jobs cost at most 1.2x what the same ``jobs.get(id)`` /
``jobs.list(limit=50)`` behind a hand-written Starlette route costs.

One uvicorn process (a subprocess, on loopback) serves both: the API mounted at ``/anyjob``
and the hand-written routes mounted at ``/hand``, over one JobManager, so both sides share
the store, its cache and the process. wrk (``/usr/bin/wrk``, bounded in time) loads one side
at a time, the sides alternating over the rounds (the order reversed every other round); the
figure per side is its median latency (1 / requests per second, 8 connections), and the
ratio is taken round by round, anyjob over hand-written: median (min-max).

Run: ``python -m benchmarks.bench_web [--quick]`` (``--quick``: 2,000 jobs, short runs; the
figures then mean nothing). The store is built once and kept under the system's temp
directory (``anyjob-bench-web-N.db``).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

import anyjob
import anyjob.instrumentation
from anyjob._records import JobRecord
from anyjob.stores import SQLiteStore
from anyjob.stores._rows import FIELDS, to_row
from anyjob.web import create_app
from benchmarks._harness import Spread, Target

WRK = "/usr/bin/wrk"
ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1.2


def _store_path(count: int) -> Path:
    return Path(tempfile.gettempdir()) / f"anyjob-bench-web-{count}.db"


def build_store(count: int) -> tuple[Path, str]:
    """An SQLite store of *count* finished jobs (made once, then reused); a job id in the middle."""
    path = _store_path(count)
    marker = path.with_suffix(".id")
    if path.exists() and marker.exists():
        return path, marker.read_text()
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()

    async def create_schema() -> None:
        async with anyjob.JobManager(SQLiteStore(path)):
            pass

    anyio.run(create_schema)
    now = time.time() - count
    ids = [str(uuid.UUID(int=(1 << 127) | index)) for index in range(count)]
    rows = [
        to_row(
            JobRecord(
                id=job_id,
                name="resize",
                state=anyjob.State.SUCCEEDED,
                labels={},
                params={"image": f"img-{index}.png", "width": 640},
                priority=0,
                created=now + index,
                scheduled=now + index,
                owner="bench",
                function="resize",
                progress=1.0,
                message="done",
                result={"width": 320, "bytes": 48213},
                attempts=1,
                started=now + index + 0.1,
                ended=now + index + 0.5,
            )
        )
        for index, job_id in enumerate(ids)
    ]
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            f"INSERT INTO anyjob_jobs ({','.join(FIELDS)}) VALUES ({','.join('?' * len(FIELDS))})",  # noqa: S608
            rows,
        )
    marker.write_text(ids[count // 2])
    return path, ids[count // 2]


# -- the server (run in a subprocess: python -m benchmarks.bench_web --serve DB PORT) ------------


def hand_written(jobs: anyjob.JobManager) -> Starlette:
    """What an application would write itself: the same manager calls, the same JSON."""

    async def one(request: Request) -> Response:
        info = await jobs.get(request.path_params["id"])
        if info is None:
            return JSONResponse({"error": {"type": "not_found", "message": "no such job"}}, status_code=404)
        return JSONResponse(info.to_dict())

    async def page(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "50"))
        offset = int(request.query_params.get("offset", "0"))
        infos = await jobs.list(limit=limit, offset=offset)
        next_offset = offset + limit if len(infos) == limit else None
        return JSONResponse({"jobs": [info.to_dict() for info in infos], "next_offset": next_offset})

    return Starlette(routes=[Route("/api/jobs/{id}", one), Route("/api/jobs", page)])


def serve(db: str, port: int) -> None:
    anyjob.instrumentation.reset_hooks()  # the default configuration: hooks as shipped
    jobs = anyjob.JobManager(SQLiteStore(db))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        async with jobs:
            yield

    app = Starlette(
        routes=[Mount("/anyjob", app=create_app(jobs)), Mount("/hand", app=hand_written(jobs))],
        lifespan=lifespan,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the load ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(db: Path) -> Generator[str, None, None]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
        [sys.executable, "-m", "benchmarks.bench_web", "--serve", str(db), str(port)], cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                msg = "the benchmark server did not start"
                raise RuntimeError(msg)
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def requests_per_second(url: str, seconds: int) -> float:
    """wrk's requests/s for *url* (1 thread, 8 connections, *seconds* long)."""
    result = subprocess.run(  # noqa: S603 - wrk at its fixed path
        [WRK, "-t1", "-c8", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        msg = f"wrk saw errors for {url}:\n{result.stdout}"
        raise RuntimeError(msg)
    found = re.search(r"Requests/sec:\s*([\d.]+)", result.stdout)
    if found is None:
        msg = f"no Requests/sec in wrk's output:\n{result.stdout}"
        raise RuntimeError(msg)
    return float(found.group(1))


def compare_route(base: str, path: str, *, rounds: int, seconds: int) -> Spread:
    """Rounds of wrk on anyjob's route and the hand-written one; prints and returns the ratio."""
    ours_us: list[float] = []
    hand_us: list[float] = []
    for side in ("anyjob", "hand"):  # warm-up: caches, the first connections
        requests_per_second(f"{base}/{side}{path}", 1)
    for index in range(rounds):
        order = ("anyjob", "hand") if index % 2 == 0 else ("hand", "anyjob")
        for side in order:
            latency = 1e6 / requests_per_second(f"{base}/{side}{path}", seconds)
            (ours_us if side == "anyjob" else hand_us).append(latency)
    ratios = [ours / hand for ours, hand in zip(ours_us, hand_us, strict=True)]
    ratio = Spread.of(ratios)
    print(f"  GET {path}")
    print(f"    hand-written Starlette route  {Spread.of(hand_us).format(1, ' µs')}/request  baseline")
    ours = Spread.of(ours_us).format(1, " µs")
    print(f"    anyjob.web.create_app(jobs)   {ours}/request  ratio {ratio.format()}")
    return ratio


# -- the stream under load (in-process: the app called as uvicorn calls it) ------------------------


async def stream_load(subscribers: int, seconds: float, rate: int) -> None:
    """*subscribers* streams of every event while one job reports progress *rate* times a second."""
    import tracemalloc

    reports = int(seconds * rate)
    received = [0] * subscribers
    finished: list[float] = []
    all_finished = anyio.Event()
    disconnect = anyio.Event()
    job_id = b"-"  # the job's id once it exists, as it appears in the stream
    began = sent = 0.0
    idle = peak = 0

    async def subscriber(app: Any, index: int) -> None:
        asked = False

        async def receive() -> dict[str, object]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            body = message.get("body")
            if isinstance(body, bytes) and body:
                received[index] += body.count(b"\nid: ") + body.startswith(b"id: ")
                if job_id in body and b'"succeeded"' in body:
                    finished.append(time.perf_counter())
                    if len(finished) == subscribers:
                        all_finished.set()

        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": "/api/events",
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "http_version": "1.1",
            "scheme": "http",
            "asgi": {"version": "3.0"},
        }
        await app(scope, receive, send)

    tracemalloc.start()
    async with anyjob.JobManager() as jobs, anyio.create_task_group() as tg:
        app = create_app(jobs)
        for index in range(subscribers):
            tg.start_soon(subscriber, app, index)
        await anyio.sleep(0.5)  # every subscriber connected and idle
        idle = tracemalloc.get_traced_memory()[0]
        async with jobs.track("load") as ctx:
            job_id = ctx.id.encode()
            began = time.perf_counter()
            for step in range(1, reports + 1):
                ctx.set_progress(step / reports, f"step {step}")
                await anyio.sleep(max(0.0, began + step / rate - time.perf_counter()))
            sent = time.perf_counter()
        with anyio.fail_after(120):
            await all_finished.wait()
        peak = tracemalloc.get_traced_memory()[1]
        disconnect.set()
    tracemalloc.stop()
    events = reports + 2  # created (running at once), the reports, succeeded
    print(f"  {subscribers} subscribers, one job reporting {rate}/s for {seconds:g} s ({events} events)")
    late = max(finished) - sent
    print(f"    sent in {sent - began:.2f} s; every subscriber had the final state {late:.2f} s later")
    print(
        f"    events delivered per subscriber: median {statistics.median(received):.0f}, "
        f"min {min(received)}, max {max(received)} (progress coalesced)"
    )
    print(f"    memory traced: {idle / 1e6:.1f} MB connected and idle, peak {peak / 1e6:.1f} MB under load")


def main(argv: list[str] | None = None) -> list[Target]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_web")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: the code runs, the figures mean nothing"
    )
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return []
    count, rounds, seconds = (2_000, 1, 1) if args.quick else (100_000, 5, 3)
    print(f"HTTP API vs a hand-written Starlette route, {count:,} finished jobs in an SQLiteStore")
    print(f"  (wrk -t1 -c8, {seconds} s per run, {rounds} rounds alternating; latency = 1 / requests/s)")
    db, job_id = build_store(count)
    targets: list[Target] = []
    with server(db) as base:
        for label, path in (
            ("GET /api/jobs/{id}", f"/api/jobs/{job_id}"),
            ("GET /api/jobs?limit=50", "/api/jobs?limit=50"),
        ):
            ratio = compare_route(base, path, rounds=rounds, seconds=seconds)
            target = Target(f"{label} vs hand-written (default configuration)", ratio, LIMIT)
            print(f"  -> {target.line()}")
            targets.append(target)
    print()
    print("The stream under load (in-process ASGI; no target, for information)")
    anyio.run(stream_load, 50 if args.quick else 1000, 0.5 if args.quick else 5.0, 1000)
    return targets


if __name__ == "__main__":
    main()
