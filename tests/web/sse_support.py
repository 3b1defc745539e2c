"""A Server-Sent Events client of an ASGI app in the same event loop (asyncio or trio).

``open_stream(app, ...)`` calls the app directly, as a server would: its ``receive`` blocks
until :meth:`Stream.disconnect`, its ``send`` hands body chunks to the test, optionally
holding them back (a slow client) until :meth:`Stream.release`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
from starlette.types import ASGIApp, Message

TIMEOUT = 20.0  # only catches a hang


class Frame:
    """One SSE block: its fields (``id``, ``event``, ``data``) or a comment."""

    def __init__(self, text: str) -> None:
        self.fields: dict[str, str] = {}
        self.comment: str | None = None
        for line in text.split("\n"):
            if line.startswith(":"):
                self.comment = line[1:].strip()
                continue
            name, _, value = line.partition(": ")
            self.fields[name] = value

    @property
    def id(self) -> int | None:
        return int(self.fields["id"]) if "id" in self.fields else None

    @property
    def event(self) -> str:
        return self.fields.get("event", "message")

    @property
    def data(self) -> Any:
        return json.loads(self.fields["data"])

    def __repr__(self) -> str:
        return f"Frame({self.fields or self.comment!r})"


class Stream:
    """What the app sent: the start message, then frames as they come."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.started = anyio.Event()
        self.finished = anyio.Event()
        self.ended_body = False
        self._disconnected = anyio.Event()
        self._send, self._receive = anyio.create_memory_object_stream[bytes](1000)
        self._buffer = ""
        self._gate: anyio.Event | None = None

    @property
    def status(self) -> int:
        assert self.start is not None
        return int(self.start["status"])

    @property
    def headers(self) -> dict[str, str]:
        assert self.start is not None
        return {key.decode(): value.decode() for key, value in self.start["headers"]}

    def hold(self) -> None:
        """Make the client slow: the app's next write blocks until :meth:`release`."""
        self._gate = anyio.Event()

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def close(self) -> None:
        self._send.close()
        self._receive.close()

    def disconnect(self) -> None:
        self._disconnected.set()

    async def asgi_receive(self) -> Message:
        if not hasattr(self, "_asked"):
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def asgi_send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            self.started.set()
            return
        gate = self._gate
        if gate is not None:
            await gate.wait()
        if message.get("body"):
            await self._send.send(message["body"])
        if not message.get("more_body", False):
            self.ended_body = True

    async def frame(self, *, skip_comments: bool = True) -> Frame:
        """The next frame (comments skipped unless asked for)."""
        with anyio.fail_after(TIMEOUT):
            while True:
                while "\n\n" in self._buffer:
                    text, self._buffer = self._buffer.split("\n\n", 1)
                    frame = Frame(text)
                    if frame.comment is None or not skip_comments:
                        if frame.fields.keys() == {"retry"}:
                            continue
                        return frame
                self._buffer += (await self._receive.receive()).decode()

    async def event_until(self, predicate: Any) -> list[Frame]:
        """Frames up to and including the first event whose data satisfies *predicate*."""
        frames = []
        while True:
            frame = await self.frame()
            frames.append(frame)
            if frame.event == "message" and predicate(frame.data):
                return frames


@contextlib.asynccontextmanager
async def open_stream(
    app: ASGIApp, path: str = "/api/events", query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    """Call *app* for ``GET path?query`` and yield what it sends; disconnect on exit."""
    stream = Stream()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(key.lower().encode(), value.encode()) for key, value in (headers or {}).items()],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }

    async def call() -> None:
        try:
            await app(scope, stream.asgi_receive, stream.asgi_send)
        finally:
            stream.finished.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            with anyio.fail_after(TIMEOUT):
                await stream.started.wait()
            yield stream
            stream.disconnect()
            stream.release()
            with anyio.fail_after(TIMEOUT):
                await stream.finished.wait()
    finally:
        stream.close()
