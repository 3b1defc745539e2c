"""``GET /api/events``: one Server-Sent Events stream of every job's events, pure ASGI.

One :class:`_Hub` per app holds a single ``jobs.events()`` subscription and a bounded
replay ring of the latest events, each with a monotonic id. Each connection reads the
ring from its own cursor: a client that fell behind gets its backlog with superseded
progress reports dropped (coalesced), one whose cursor left the ring (or never was in
it) gets a fresh ``snapshot`` instead. A connection writes at most once per interval
(50 ms, longer with thousands of connections), so a job reporting progress a thousand
times a second costs each client a few writes. No task outlives a connection: whichever
connection needs the next event pulls it from the subscription while the others wait;
each connection has one task noticing its disconnect at once and one for keep-alives.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias, final

import anyio
import attrs
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from anyjob._events import EventStream
from anyjob._exceptions import JobError, StoreError
from anyjob._limits import check_id
from anyjob._manager import JobManager
from anyjob._records import JobEvent
from anyjob._state import State
from anyjob.web._errors import ApiError, error_response

__all__ = ["EventsEndpoint", "StreamSettings"]

#: One event in the ring: its id, the event, and its SSE frame (encoded once).
Entry: TypeAlias = tuple[int, JobEvent, bytes]

_ACTIVE: Final = (State.CREATED, State.RUNNING, State.CANCELING)
_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_KEEPALIVE: Final = b": keep-alive\n\n"
#: The most jobs whose owner label the hub remembers (it forgets them all past this).
_MAX_OWNERS: Final = 100_000
#: The low bits of an event id on the wire: the hub's random token (see ``_Hub.wire_id``).
_TOKEN_BITS: Final = 16
_TOKEN_MASK: Final = (1 << _TOKEN_BITS) - 1
#: The most jobs a snapshot lists.
_SNAPSHOT_LIMIT: Final = 1000
#: The most events the hub takes from its subscription at once.
_PULL_BATCH: Final = 1000
#: The most events a connection writes at once (a client far behind catches up in steps).
_SEND_BATCH: Final = 1000
#: The shortest time between two writes of events to one client, in seconds...
_WRITE_INTERVAL: Final = 0.05
#: ...longer with many clients: all of them together get about this many writes a second.
_WRITES_PER_SECOND: Final = 5000
#: How long a client waits before reconnecting, in milliseconds (sent once per connection).
_RETRY_MS: Final = 1000


@final
@attrs.frozen
class StreamSettings:
    """How the stream keeps connections alive and how much it can replay."""

    keepalive: float
    replay: int

    @classmethod
    def checked(cls, keepalive: object, replay: object) -> StreamSettings:
        """Settings from ``create_app``'s arguments, checked."""
        if isinstance(keepalive, bool) or not isinstance(keepalive, int | float) or not 0 < keepalive < 3600:  # noqa: PLR2004
            msg = f"keepalive must be seconds between 0 and 3600 (exclusive), not {keepalive!r}"
            raise ValueError(msg)
        if isinstance(replay, bool) or not isinstance(replay, int) or replay < 1:
            msg = f"replay must be an int >= 1, not {replay!r}"
            raise ValueError(msg)
        return cls(float(keepalive), replay)


@final
class _Hub:
    """One subscription shared by every connection, and the ring of the latest events.

    Invariant: the ring holds the events numbered ``last - len(ring) + 1 .. last``, in
    order; numbers start past the creation time in microseconds, so a restarted server's
    are past the previous one's. An event's id on the wire is its number and the hub's
    random token (:meth:`wire_id`): an id of another server (another worker process of
    the same application, or the one before a restart) is never taken for one of this
    hub's, and gets a snapshot, not a replay from the wrong place.
    """

    __slots__ = (
        "_changed",
        "_pulling",
        "_ring",
        "_stream",
        "connections",
        "ended",
        "last",
        "owners",
        "token",
    )

    def __init__(self, stream: EventStream, replay: int) -> None:
        self._stream = stream
        self._ring: deque[Entry] = deque(maxlen=replay)
        self.last = time.time_ns() // 1000  # the number before the first event
        self.token = int.from_bytes(os.urandom(2), "big")
        self._pulling = False
        self._changed = anyio.Event()
        self.ended = False
        self.owners: dict[str, str | None] = {}
        self.connections = 0

    def wire_id(self, number: int) -> int:
        """The id an event numbered *number* has on the wire: still growing, and this hub's."""
        return (number << _TOKEN_BITS) | self.token

    def number_of(self, last_event_id: str | None) -> int:
        """The event number a client's ``Last-Event-ID`` names here (-1: none of this hub's)."""
        if not last_event_id or not last_event_id.strip().isdigit():
            return -1
        wire = int(last_event_id)
        if wire & _TOKEN_MASK != self.token:
            return -1
        return wire >> _TOKEN_BITS

    async def catch_up(self) -> None:
        """Move every event already buffered into the ring (before a snapshot, so none is older)."""
        stream = self._stream
        while stream.pending and not self.ended:
            await self.wait_past(self.last)

    def since(self, cursor: int) -> list[Entry] | None:
        """The events after *cursor* (at most a batch), or None when they left the ring."""
        if cursor == self.last:
            return []
        first = self.last - len(self._ring) + 1
        if cursor > self.last or cursor < first - 1:
            return None
        start = cursor - first + 1
        return list(itertools.islice(self._ring, start, start + _SEND_BATCH))

    async def wait_past(self, cursor: int) -> None:
        """Return once an event after *cursor* is in the ring, or the subscription ended."""
        while self.last <= cursor and not self.ended:
            if self._pulling:
                await self._changed.wait()
                continue
            self._pulling = True
            stream = self._stream
            try:
                pulled = 0
                # One event, then those already buffered (up to a batch): the waiting
                # connections wake once per batch, not once per event.
                while pulled == 0 or (stream.pending and pulled < _PULL_BATCH):
                    event = await stream.__anext__()
                    self.last += 1
                    seq = self.last  # encoded once here, not once per connection
                    self._ring.append((seq, event, _frame(self.wire_id(seq), None, event.to_dict())))
                    pulled += 1
            except StopAsyncIteration:
                self.ended = True
            finally:
                self._pulling = False
                changed, self._changed = self._changed, anyio.Event()
                changed.set()


def _coalesced(batch: list[Entry]) -> list[Entry]:
    """*batch* without the progress reports a later event of the same job and state supersedes."""
    if len(batch) == 1:
        return batch
    later: dict[str, State] = {}
    kept: list[Entry] = []
    for entry in reversed(batch):
        event = entry[1]
        if later.get(event.job_id) is not event.state or event.state.is_done:
            kept.append(entry)
        later[event.job_id] = event.state
    kept.reverse()
    return kept


def _frame(wire_id: int, event: str | None, data: Any) -> bytes:
    head = f"id: {wire_id}\n" if event is None else f"id: {wire_id}\nevent: {event}\n"
    return (head + "data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n\n").encode()


@final
class EventsEndpoint:
    """The ASGI app of ``GET /api/events`` (query ``id``, repeatable; header ``Last-Event-ID``)."""

    def __init__(
        self,
        jobs: JobManager,
        principal: Callable[[Request], Awaitable[str | None]],
        scoped: Callable[[dict[str, str] | None, str | None], Any],
        owner_label: str | None,
        settings: StreamSettings,
    ) -> None:
        self._jobs = jobs
        self._principal = principal
        self._scoped = scoped
        self._owner_label = owner_label
        self._settings = settings
        self._hub: _Hub | None = None

    def _open_hub(self) -> _Hub:
        hub = self._hub
        if hub is None:
            hub = self._hub = _Hub(self._jobs.events(), self._settings.replay)  # ManagerClosedError
        elif hub.ended:
            raise ApiError("unavailable", "the job manager is closed: no more events")
        return hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            principal = await self._principal(request)
            ids = request.query_params.getlist("id")
            for job_id in ids:
                try:
                    check_id(job_id)
                except (TypeError, ValueError) as error:
                    raise ApiError("invalid_request", f"query parameter 'id': {error}") from None
            hub = self._open_hub()
        except ApiError as error:
            await error_response(error)(scope, receive, send)
            return
        except JobError as error:  # ManagerClosedError: not open yet, or closed
            await error_response(ApiError("unavailable", str(error)))(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        connection = _Connection(self, hub, send, principal, frozenset(ids))
        async with anyio.create_task_group() as tg:
            tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
            tg.start_soon(connection.keep_alive)
            # The client went away while we wrote to it, or the store stopped answering a
            # snapshot or an owner lookup: the stream ends, the client reconnects.
            with contextlib.suppress(OSError, StoreError):
                await connection.run(request.headers.get("last-event-id"))
            tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(OSError):  # the client is gone already
                await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel *scope* as soon as the client disconnects."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


@final
class _Connection:
    """One client's cursor into the hub, and what it may see."""

    __slots__ = (
        "_busy",
        "_endpoint",
        "_filtered",
        "_hub",
        "_ids",
        "_principal",
        "_send",
        "_sent_at",
        "_turn",
    )

    def __init__(
        self, endpoint: EventsEndpoint, hub: _Hub, send: Send, principal: str | None, ids: frozenset[str]
    ) -> None:
        self._endpoint = endpoint
        self._hub = hub
        self._send = send
        self._principal = principal
        self._ids = ids
        self._sent_at = time.monotonic()  # keep-alives are real time, whatever the loop's clock
        # The stream and its keep-alives write in turn (an Event only when they meet: rare).
        self._busy = False
        self._turn: anyio.Event | None = None
        #: Whether some events are not for this client (decided once: most streams see all).
        self._filtered = bool(ids) or (endpoint._owner_label is not None and principal is not None)

    async def _write(self, data: bytes, *, unless_written_since: float | None = None) -> None:
        """Send *data* (a keep-alive: only if nothing was sent since *unless_written_since*)."""
        while self._busy:
            if self._turn is None:
                self._turn = anyio.Event()
            await self._turn.wait()
        if unless_written_since is not None and self._sent_at > unless_written_since:
            return
        self._busy = True
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
            self._sent_at = time.monotonic()
        finally:
            self._busy = False
            turn, self._turn = self._turn, None
            if turn is not None:
                turn.set()

    async def keep_alive(self) -> None:
        """Write a keep-alive comment whenever nothing was written for ``keepalive`` seconds."""
        keepalive = self._endpoint._settings.keepalive
        with contextlib.suppress(OSError):  # the client went away: the disconnect ends the rest
            while True:
                await anyio.sleep(max(self._sent_at + keepalive - time.monotonic(), 0.0))
                due = self._sent_at
                if time.monotonic() - due >= keepalive:
                    await self._write(_KEEPALIVE, unless_written_since=due)

    async def run(self, last_event_id: str | None) -> None:
        """Replay from *last_event_id* (or snapshot), then follow the hub until it ends."""
        self._hub.connections += 1
        try:
            await self._follow(last_event_id)
        finally:
            self._hub.connections -= 1

    async def _follow(self, last_event_id: str | None) -> None:
        hub = self._hub
        cursor = hub.number_of(last_event_id)
        start = f"retry: {_RETRY_MS}\n\n".encode()
        batch = hub.since(cursor) if cursor >= 0 else None
        if batch is None:
            await hub.catch_up()  # what was buffered while nobody listened is older than the snapshot
            cursor = hub.last
            await self._write(start + await self._snapshot(cursor))
        else:
            await self._write(start)
        while True:
            if batch:
                cursor = batch[-1][0]
                kept = _coalesced(batch)
                if self._filtered:
                    kept = [entry for entry in kept if await self._visible(entry[1])]
                if kept:
                    await self._write(b"".join(entry[2] for entry in kept))
                    # At most one write per interval: what comes meanwhile is sent as one
                    # batch, its superseded progress dropped (so clients cost writes per
                    # interval, not per event, and many clients a bounded number in all).
                    await anyio.sleep(max(_WRITE_INTERVAL, hub.connections / _WRITES_PER_SECOND))
            if hub.ended and hub.last <= cursor:
                return
            await hub.wait_past(cursor)
            batch = hub.since(cursor)
            if batch is None:  # this client fell behind the whole ring
                await hub.catch_up()
                cursor = hub.last
                await self._write(await self._snapshot(cursor))

    async def _visible(self, event: JobEvent) -> bool:
        if self._ids and event.job_id not in self._ids:
            return False
        label = self._endpoint._owner_label
        if label is None or self._principal is None:
            return True
        owners = self._hub.owners
        if event.job_id not in owners:
            info = await self._endpoint._jobs.get(event.job_id)
            if len(owners) >= _MAX_OWNERS:
                owners.clear()
            owners[event.job_id] = None if info is None else info.labels.get(label)
        return owners[event.job_id] == self._principal

    async def _snapshot(self, cursor: int) -> bytes:
        """``event: snapshot``: the jobs this stream follows as they are now (active ones, or *ids*)."""
        jobs = self._endpoint._jobs
        infos = []
        if self._ids:
            for job_id in sorted(self._ids):
                info = await jobs.get(job_id)
                if info is not None and await self._visible_info(info):
                    infos.append(info)
        else:
            labels = self._endpoint._scoped(None, self._principal)
            infos = await jobs.list(state=_ACTIVE, labels=labels, limit=_SNAPSHOT_LIMIT)
        return _frame(self._hub.wire_id(cursor), "snapshot", {"jobs": [info.to_dict() for info in infos]})

    async def _visible_info(self, info: Any) -> bool:
        label = self._endpoint._owner_label
        if label is None or self._principal is None:
            return True
        return bool(info.labels.get(label) == self._principal)
