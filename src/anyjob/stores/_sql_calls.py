"""The one way into an SQL store's database: a call in a worker thread, its errors, a lost connection.

:meth:`SQLCalls._run` runs ``fn(connection, *args)`` in a worker thread under the store's
lock, so the stores work alike on asyncio and trio and the event loop never waits for the
database; every driver error becomes a :class:`~anyjob.StoreError` there. A lost connection
is opened again at once (and what had not reached its ``COMMIT`` runs again); a call that
cannot reach the database makes the store unavailable (:mod:`anyjob.stores._outage`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from anyjob._exceptions import StoreError
from anyjob.stores._connection import Connection
from anyjob.stores._outage import Availability

__all__: list[str] = []

T = TypeVar("T")


class SQLCalls:
    """The connection of an SQL store, and the calls on it (a base of ``SQLStore``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        #: Whether the database takes this store's calls (its moves told to the hooks).
        self.availability = Availability(self)
        #: How many writes this store made (its notice of others' tells its own apart).
        self.writes = 0

    def _open(self) -> Connection:
        """Connect, and create the tables if needed."""
        raise NotImplementedError  # pragma: no cover - every store says how

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None:
            try:
                conn = self._open()
            except StoreError:
                raise
            except Exception as exc:
                msg = f"cannot open {self!r}: {exc}"
                raise StoreError(msg) from exc
            self._conn = conn
        return conn

    def _unreachable(self, error: BaseException) -> bool:
        """Whether a driver error says the database cannot be reached now (not a refusal)."""
        raise NotImplementedError  # pragma: no cover - every store says which

    async def _run(
        self,
        what: str,
        fn: Callable[..., T],
        *args: Any,
        wrote: bool = True,
        unsure: Callable[..., T] | None = None,
    ) -> T:
        """``fn(connection, *args)`` in a worker thread; a driver error becomes a StoreError.

        *what* says what failed in the error's message ("insert job 'x'"). A connection
        found lost is dropped and opened again at once: if nothing was being committed
        (the database rolled back what it had begun), *fn* runs once more on the new one;
        if its ``COMMIT`` was on its way, ``unsure(connection, *args)`` runs instead when
        given (it finds out whether the first try was written), and otherwise the error is
        raised. A call that cannot reach the database makes the store unavailable, the
        next one that succeeds and *wrote* (False for a call that only reads, or writes
        only when it finds something to do) makes it available again: each move told to
        the hooks once (see :mod:`anyjob.stores._outage`).
        """
        try:
            result, moved = await anyio.to_thread.run_sync(self._locked, what, fn, args, wrote, unsure)
        except _UnreachableError as exc:
            if exc.moved:
                self.availability.tell(exc)
            raise
        if moved:
            self.availability.tell(None)
        return result

    def _locked(
        self,
        what: str,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        wrote: bool,  # noqa: FBT001 - passed by position through to_thread.run_sync
        unsure: Callable[..., T] | None,
    ) -> tuple[T, bool]:
        with self._lock:
            try:
                result = self._attempt(what, fn, args, unsure)
            except _UnreachableError as exc:
                exc.moved = self.availability.mark(reached=False, wrote=False)
                raise
            if wrote:
                self.writes += 1
            return result, self.availability.mark(reached=True, wrote=wrote)

    def _attempt(
        self, what: str, fn: Callable[..., T], args: tuple[Any, ...], unsure: Callable[..., T] | None
    ) -> T:
        for again in (True, False):
            try:
                conn = self._connection()
            except StoreError as exc:
                if exc.__cause__ is None:
                    raise  # refused (tables of a newer anyjob): not a matter of reaching it
                msg = f"{self!r} could not {what}: cannot open the database: {exc.__cause__}"
                raise _UnreachableError(msg) from exc.__cause__
            conn.committing = False
            try:
                return fn(conn, *args)
            except conn.errors as exc:
                lost = not conn.usable()
                if lost:
                    self._drop()  # connect again: now, or at the next call
                    if again and not conn.committing:
                        continue  # nothing was written: once more, on a new connection
                    if again and unsure is not None:
                        fn = unsure  # whether it was written, on a new connection
                        continue
                msg = f"{self!r} could not {what}: {exc}"
                if lost or self._unreachable(exc):
                    raise _UnreachableError(msg) from exc
                raise StoreError(msg) from exc
        raise AssertionError  # pragma: no cover - the loop returns or raises


class _UnreachableError(StoreError):
    """A :class:`~anyjob.StoreError` raised because the database could not be reached."""

    __qualname__ = "StoreError"  # as users see it: the kind of error they catch
    #: Whether this error made the store unavailable (a move to tell the hooks).
    moved = False
