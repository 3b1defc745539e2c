"""When the database goes away: telling the hooks, and trying again with backoff.

A store is *unavailable* from the first call that fails because the database cannot be
reached (a lost PostgreSQL connection that cannot be opened again, a refused connect,
an SQLite file write-locked by another process past its busy timeout) until the next
write that succeeds: reads may go on meanwhile (an SQLite file locked by a writer is
still read), so only a write says that the database takes the manager's changes again.
Each of the two moves is told once through the hooks (``anyjob.store_unavailable``,
``anyjob.store_available``).

The manager's background work (its batched writes, its claims, its change feed, its
upkeep) waits for the database with :func:`backoff`; a call a user makes while it
stays away raises :class:`~anyjob.StoreError` at once.
"""

from __future__ import annotations

import time
from typing import Final, final

import anyio
import tenacity

from anyjob._exceptions import StoreError
from anyjob._state import State
from anyjob.instrumentation import _hooks

__all__ = ["STORE_AVAILABLE", "STORE_UNAVAILABLE", "Availability", "backoff"]

#: The store could not reach its database (a warning). ``job_id`` is empty, ``job_name``
#: names the store, ``error`` is the :class:`~anyjob.StoreError` (its cause chained).
STORE_UNAVAILABLE: Final = "anyjob.store_unavailable"
#: The store wrote to its database again after :data:`STORE_UNAVAILABLE`; ``duration``
#: is how many seconds it was unavailable.
STORE_AVAILABLE: Final = "anyjob.store_available"
#: The first pause before trying again, and the longest (seconds, jitter added).
FIRST_PAUSE: Final = 0.02
LONGEST_PAUSE: Final = 1.0


@final
class Availability:
    """Whether a store's database took its calls; each change of that told once to the hooks.

    :meth:`mark` is called where the calls are serialized (the store's worker thread,
    under its lock), so the moves follow the order the calls ran in; :meth:`tell` hands
    a move to the hooks on the event loop.
    """

    __slots__ = ("_since", "_store", "away")

    def __init__(self, store: object) -> None:
        self._store = store  # named by the events (its repr)
        self._since = 0.0
        #: Whether the database is unavailable now (see the module's docstring).
        self.away = False

    def mark(self, *, reached: bool, wrote: bool) -> bool:
        """A call ran: it could not reach the database, or it did (*wrote*: and it wrote).

        Returns whether that is a move to tell (:meth:`tell`).
        """
        if not reached:
            if self.away:
                return False
            self.away = True
            self._since = time.monotonic()
            return True
        if not self.away or not wrote:
            return False
        self.away = False
        return True

    def tell(self, error: StoreError | None) -> None:
        """Tell the hooks the move :meth:`mark` just made (*error*: why it is unavailable)."""
        if self.away:
            _tell(STORE_UNAVAILABLE, repr(self._store), error, None)
        else:
            _tell(STORE_AVAILABLE, repr(self._store), None, time.monotonic() - self._since)


def _tell(name: str, what: str, error: BaseException | None, duration: float | None) -> None:
    if _hooks.active and _hooks.wanted(name):
        # A HookEvent names a job; this one is the store's: no id, the store as its name,
        # and the state of the work it holds up (what was running goes on).
        state = State.RUNNING
        event = _hooks.HookEvent(name, "", what, {}, state, error=error, duration=duration)
        _hooks.emit(event)


def _retryable(exc: BaseException) -> bool:
    # Only a StoreError: never cancellation, KeyboardInterrupt or anything else.
    return isinstance(exc, StoreError)


def backoff(patience: float | None = None) -> tenacity.AsyncRetrying:
    """A fresh retrying object: tries again on :class:`~anyjob.StoreError`, with backoff.

    Forever, or for *patience* seconds (then the last error is raised). Pauses grow
    from :data:`FIRST_PAUSE` to :data:`LONGEST_PAUSE` seconds (with jitter), through
    ``anyio.sleep`` (so a cancellation ends them); anything else, cancellation
    included, is raised at once. Made for each outage (``await backoff()(fn, *args)``
    once a first try failed), so the pauses start short again after the database came back.
    """
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(_retryable),
        wait=tenacity.wait_exponential(multiplier=FIRST_PAUSE, max=LONGEST_PAUSE)
        + tenacity.wait_random(0, FIRST_PAUSE),
        stop=tenacity.stop_never if patience is None else tenacity.stop_after_delay(patience),
        sleep=anyio.sleep,
        reraise=True,
    )
