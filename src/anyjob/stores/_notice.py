"""Notice of other processes' writes: what wakes the SQL stores' feeds between two reads of the log.

A feed reads the change log (``anyjob_changes``), then waits. Writes through the same
store object poke it at once; writes by other processes (or other store objects) are
noticed here, so that ``wait``/``events`` in one process learn of a change in another
within milliseconds; the feed's read every ``poll_interval`` seconds stays as the
safety net.

* :class:`Listener` (PostgreSQL): ``LISTEN`` on a dedicated connection. Every insert
  into the change log notifies the schema's channel (a trigger, so no write pays a
  round trip for it; PostgreSQL sends one notice per transaction and payload), with the
  writer's origin as the small payload. After any (re)connection the feeds read the
  log again, so nothing written while it was not listening is missed.
* :class:`DataVersion` (SQLite): ``PRAGMA data_version`` on the store's own connection
  whenever the file's WAL was written to (Linux's inotify; elsewhere every
  :data:`CHECK_EVERY` seconds), while a feed waits: it changes exactly when another
  connection committed to the file (never for this store's own writes), and costs a
  few microseconds (it reads the WAL index in shared memory).

One task at a time watches for a store (its ``_driving`` lock): the feed that waits.
Both poke the store's feeds through ``SQLStore._poke``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pathlib
import sqlite3
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, final

import anyio

from anyjob._exceptions import StoreError
from anyjob.stores._outage import backoff

if TYPE_CHECKING:
    from anyjob.stores._sql import SQLStore

__all__: list[str] = []

#: Seconds between two looks at an SQLite file's ``data_version`` while a feed waits, where
#: inotify is not at hand (and while the store's connection is busy).
CHECK_EVERY: Final = 0.005
#: After inotify saw the WAL written to: look at ``data_version`` every SETTLE_PAUSE seconds
#: SETTLE_LOOKS times, then every LONGEST_SETTLE_PAUSE seconds, for up to SETTLE_FOR
#: seconds, until the commit is seen (its frames are synced before it is).
SETTLE_PAUSE: Final = 0.001
SETTLE_LOOKS: Final = 50
LONGEST_SETTLE_PAUSE: Final = 0.02
SETTLE_FOR: Final = 1.0


class Notices(Protocol):
    """What a waiting feed runs: it pokes the store's feeds when another process wrote."""

    async def watch(self) -> None:
        """Until cancelled (one task at a time; the others wait their turn)."""
        ...

    def drain(self) -> None:
        """Take the notices received so far, without waiting (a feed is about to read the log)."""
        ...

    def close(self) -> None:
        """Let go of what it holds (the store is closing)."""
        ...


@final
class DataVersion:
    """SQLite: ``PRAGMA data_version`` on the store's connection, whenever the file's WAL changes.

    Where Linux's inotify is at hand, the watch sleeps until the ``-wal`` file is written
    to (by any process: so nothing runs while nothing is written); elsewhere it looks every
    :data:`CHECK_EVERY` seconds. The version is asked on the event loop, and only while the
    connection is free (a call of the store holds it otherwise: then it asks again a moment
    later), so no worker thread is woken for it. A new connection (opened again after an
    error) counts as a change: the feeds read the log again.
    """

    __slots__ = ("_conn", "_driving", "_store", "_version", "_wal", "_watched", "_writes")

    def __init__(self, store: SQLStore, path: str) -> None:
        self._store = store
        self._wal = None if path == ":memory:" else f"{path}-wal"  # :memory: has no other writer
        self._driving: anyio.Lock | None = None
        self._watched: _Inotify | None = None
        self._conn: object = None  # the connection the version was read on
        self._version: object = None
        self._writes = 0  # the store's count of its own writes at the last look

    async def watch(self) -> None:
        if self._wal is None:
            await anyio.sleep_forever()
        if self._driving is None:
            self._driving = anyio.Lock()
        async with self._driving:
            woken = False  # the first look: for what was committed since the last one
            while True:
                watched = self._watched
                if watched is None or watched.stale():  # first: a write from now on wakes it
                    self._unwatch()
                    self._watched = _Inotify.of(self._wal)
                if await self._committed(settle=woken):
                    self._store._poke("")  # the feed that waits ends this watch
                woken = await self._written()

    async def _committed(self, *, settle: bool) -> bool:
        """Whether another connection committed since the last look.

        A write to the WAL comes before its commit is seen (SQLite syncs the frames, then
        publishes them in the shared WAL index, which inotify does not see): when inotify
        woke the watch (*settle*) for nothing new yet, it looks again (every millisecond,
        then less often) for up to :data:`SETTLE_FOR` seconds, unless this store wrote
        meanwhile (then the write was most likely its own: another process's commit that
        came with it is seen at the next write, or the next poll).
        """
        writes = self._store.writes
        if settle and writes != self._writes:
            settle = False
        self._writes = writes
        settling = anyio.current_time() + SETTLE_FOR if settle else 0.0
        looks = 0
        while True:
            changed = self._changed()
            if changed:
                return True
            if changed is False and anyio.current_time() >= settling:
                return False
            looks += 1
            # Every millisecond at first, then less often: a slow sync (a busy disk) is seen soon too.
            pause = SETTLE_PAUSE if looks < SETTLE_LOOKS else LONGEST_SETTLE_PAUSE
            await anyio.sleep(pause if changed is False else CHECK_EVERY)

    async def _written(self) -> bool:
        """Until the WAL may have been written to (or :data:`CHECK_EVERY` seconds, without inotify).

        Returns whether inotify said so (then the commit may not be seen yet).
        """
        watched = self._watched
        if watched is None:
            await anyio.sleep(CHECK_EVERY)
            return False
        try:
            await anyio.wait_readable(watched.fd)
        except anyio.ClosedResourceError:
            return False  # the store was closed meanwhile (it opens again): the loop watches anew
        watched.drain()
        return True

    def _changed(self) -> bool | None:
        """Whether another connection committed since the last look (None: busy, look again)."""
        store = self._store
        lock = store._lock
        if not lock.acquire(blocking=False):
            return None  # in use by a call: look again in a moment
        try:
            conn = store._conn
            if conn is None:
                return False  # the next call opens one (and its feed read comes first)
            version = conn.raw.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return False  # the feed's read every poll_interval tells the rest
        finally:
            lock.release()
        if conn is self._conn and version == self._version:
            return False
        self._conn = conn
        self._version = version
        return True

    def drain(self) -> None:
        return  # data_version is asked afresh: nothing piles up

    def _unwatch(self) -> None:
        watched = self._watched
        self._watched = None
        if watched is not None:
            watched.close()

    def close(self) -> None:
        # ``_driving`` stays: a watch holding it goes on with a new watcher, and no second starts.
        self._unwatch()
        self._conn = self._version = None


#: inotify(7): the events watched, and inotify_init1's flags (O_NONBLOCK, O_CLOEXEC).
_IN_MODIFY: Final = 0x2
_IN_ATTRIB: Final = 0x4
_IN_MOVE_SELF: Final = 0x800
_IN_DELETE_SELF: Final = 0x400
_IN_FLAGS: Final = os.O_NONBLOCK | os.O_CLOEXEC


@final
class _Inotify:
    """Linux's inotify watching one file, through libc (ctypes): its fd is readable once written."""

    __slots__ = ("_inode", "_path", "fd")

    def __init__(self, fd: int, path: str, inode: int) -> None:
        self.fd = fd
        self._path = path
        self._inode = inode

    @classmethod
    def of(cls, path: str | None) -> _Inotify | None:
        """A watch of *path*, or None where inotify is not at hand (not Linux) or the file is missing."""
        if path is None or not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(_IN_FLAGS)
            if fd < 0:
                return None
            mask = _IN_MODIFY | _IN_ATTRIB | _IN_MOVE_SELF | _IN_DELETE_SELF
            if libc.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
                os.close(fd)
                return None
            inode = pathlib.Path(path).stat().st_ino
        except (OSError, AttributeError):  # AttributeError: a libc without inotify
            return None
        return cls(fd, path, inode)

    def stale(self) -> bool:
        """Whether the file was removed or replaced since (watch the new one)."""
        try:
            return pathlib.Path(self._path).stat().st_ino != self._inode
        except OSError:
            return True

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        with contextlib.suppress(Exception):  # outside an event loop: nobody waits on it
            anyio.notify_closing(self.fd)
        os.close(self.fd)


@final
class Listener:
    """PostgreSQL: ``LISTEN`` to the schema's channel on a connection of its own.

    The connection is opened (in a worker thread) by the first watch, and again with
    backoff after it was lost; each time the feeds read the log again. Notices are read
    on the event loop once its socket is readable (``anyio.wait_readable``).
    """

    __slots__ = ("_closes", "_conn", "_connect", "_driving", "_store")

    def __init__(self, store: SQLStore, connect: Callable[[], Any]) -> None:
        self._store = store
        self._connect = connect  # a new connection, listening (called in a worker thread)
        self._driving: anyio.Lock | None = None
        self._conn: Any = None
        self._closes = 0  # how many times close() was called: a connect begun before is dropped

    async def watch(self) -> None:
        if self._driving is None:
            self._driving = anyio.Lock()
        async with self._driving:
            while True:
                conn = self._conn
                if conn is None:
                    await backoff()(self._open)
                    self._store._poke("")  # resync: what was logged while nobody listened
                    continue
                try:
                    await anyio.wait_readable(conn.fileno())
                    origins = {notice.payload for notice in conn.notifies(timeout=0)}
                except anyio.get_cancelled_exc_class():
                    raise
                except Exception:  # noqa: BLE001 - the driver's (a lost connection): listen anew
                    self._drop()
                    continue
                for origin in origins:
                    self._store._poke(origin)

    async def _open(self) -> None:
        try:
            # Abandoned when cancelled (a poked feed, a closing manager): a connect to an
            # unreachable server must not hold them for its whole timeout.
            await anyio.to_thread.run_sync(self._connect_now, self._closes, abandon_on_cancel=True)
        except StoreError:
            raise
        except Exception as exc:  # the driver's: tried again with backoff
            msg = f"{self._store!r} could not listen for changes: {exc}"
            raise StoreError(msg) from exc

    def _connect_now(self, closes: int) -> None:
        # Kept by the thread itself: if the task waiting for it was cancelled meanwhile,
        # the connection is still closed by close(), never left to the garbage collector;
        # one that arrives after a close() (or beside another) is closed here.
        conn = self._connect()
        if self._conn is not None or closes != self._closes:
            conn.close()
            return
        self._conn = conn

    def drain(self) -> None:
        """Read what the server sent (unread, its notices would pile up there while feeds are busy).

        The store's feeds are poked as by :meth:`watch`: the one about to read clears that.
        """
        conn = self._conn
        if conn is None or (self._driving is not None and self._driving.locked()):
            return  # not listening, or a watch reads them
        try:
            origins = {notice.payload for notice in conn.notifies(timeout=0)}
        except Exception:  # noqa: BLE001 - the driver's (a lost connection): the next watch listens anew
            self._drop()
            return
        for origin in origins:
            self._store._poke(origin)

    def _drop(self) -> None:
        conn = self._conn
        self._conn = None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: gone either way
                conn.close()

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):  # outside an event loop: nobody waits on it
                anyio.notify_closing(conn.fileno())
        self._closes += 1
        self._drop()
