"""Starting and stopping ``serve_app.py`` in a subprocess, and reading its SSE stream over TCP."""

from __future__ import annotations

import contextlib
import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx

SERVE = pathlib.Path(__file__).with_name("serve_app.py")
ROOT = pathlib.Path(__file__).resolve().parents[2]


class Server:
    """One ``serve_app.py`` process."""

    def __init__(self, db: pathlib.Path, port: int = 0, keepalive: float = 15.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVE), str(db), str(port), str(keepalive)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening "), f"the server did not start: {line!r}"
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def server(db: pathlib.Path, **options: Any) -> Iterator[Server]:
    started = Server(db, **options)
    try:
        yield started
    finally:
        started.stop()


class SSE:
    """The frames of one streaming response, read line by line.

    Keep the object while reading: its line iterator, once collected, closes the response.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def frame(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for line in self._lines:
            if not line:
                if fields and set(fields) != {"retry"}:
                    if "data" in fields:
                        fields["data"] = json.loads(fields["data"])
                    fields.setdefault("event", "message")
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                fields.setdefault("comments", []).append(line[1:].strip())
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        raise AssertionError("the stream ended")

    def until(self, job_id: str, *states: str) -> list[dict[str, Any]]:
        frames = []
        while True:
            frame = self.frame()
            frames.append(frame)
            data = frame.get("data")
            if frame["event"] == "message" and data and data["job_id"] == job_id and data["state"] in states:
                return frames
