"""The stream against a real uvicorn on loopback: resume, disconnect, keep-alive, other processes."""

from __future__ import annotations

import time

import anyio
import httpx
from tests.web.server_support import SSE, server

from anyjob import JobManager
from anyjob.stores import SQLiteStore

TIMEOUT = httpx.Timeout(20.0)  # only catches a hang


def test_resume_over_http_with_last_event_id(tmp_path):
    with (
        server(tmp_path / "jobs.db") as running,
        httpx.Client(base_url=running.url, timeout=TIMEOUT) as client,
    ):
        with client.stream("GET", "/api/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            stream = SSE(response)
            assert stream.frame()["event"] == "snapshot"
            first = client.post(
                "/api/jobs", json={"name": "steps", "params": {"steps": 3, "pause": 0.01}}
            ).json()
            frames = stream.until(first["id"], "succeeded")
            last = int(frames[-1]["id"])
        second = client.post(
            "/api/jobs", json={"name": "steps", "params": {"steps": 3, "pause": 0.01}}
        ).json()
        with client.stream("GET", "/api/events", headers={"Last-Event-ID": str(last)}) as response:
            frames = SSE(response).until(second["id"], "succeeded")
        assert all(frame["event"] == "message" for frame in frames), frames
        assert {frame["data"]["job_id"] for frame in frames} == {second["id"]}
        ids = [int(frame["id"]) for frame in frames]
        assert ids == sorted(set(ids))
        assert ids[0] > last


def test_the_server_notices_a_disconnect_at_once(tmp_path):
    with (
        server(tmp_path / "jobs.db") as running,
        httpx.Client(base_url=running.url, timeout=TIMEOUT) as client,
    ):
        with client.stream("GET", "/api/events") as response:
            stream = SSE(response)  # kept: a collected line iterator closes the response
            assert stream.frame()["event"] == "snapshot"
            assert client.get("/test/streams").json() == {"open": 1}
        # The keep-alive is 15 s: only the disconnect itself can end the response sooner.
        deadline = time.monotonic() + 5.0
        while client.get("/test/streams").json()["open"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/test/streams").json() == {"open": 0}


def test_keep_alive_comments_reach_the_client(tmp_path):
    with (
        server(tmp_path / "jobs.db", keepalive=0.1) as running,
        httpx.Client(base_url=running.url, timeout=TIMEOUT) as client,
    ):
        with client.stream("GET", "/api/events") as response:
            lines = response.iter_lines()
            seen = [next(lines) for _ in range(8)]
        assert ": keep-alive" in seen


def test_events_of_jobs_reported_by_another_process_over_sqlite(tmp_path):
    db = tmp_path / "jobs.db"
    with server(db) as running, httpx.Client(base_url=running.url, timeout=TIMEOUT) as client:
        with client.stream("GET", "/api/events") as response:
            stream = SSE(response)
            assert stream.frame()["event"] == "snapshot"

            async def report() -> str:
                async with JobManager(SQLiteStore(db, poll_interval=0.02)) as jobs:
                    ref = await jobs.create("elsewhere")
                    await jobs.update(ref.id, 0.5, "half")
                    await jobs.complete(ref.id, {"ok": True})
                    return ref.id

            job_id = anyio.run(report)
            stream.until(job_id, "succeeded")  # seen here, though another process made and ended it
        assert client.get(f"/api/jobs/{job_id}").json()["result"] == {"ok": True}
