"""The follower: what other managers sharing the store did, applied here as one decision table."""

from __future__ import annotations

from typing import final

from anyjob._manager._publisher import Publisher
from anyjob._manager._recorder import Recorder
from anyjob._manager._waiters import Waiters
from anyjob._state import State
from anyjob.stores._base import StoreChange, StoreFeed
from anyjob.stores._outage import backoff

__all__ = ["Follower"]


@final
class Follower:
    """Reads the store's feed of other managers' changes and decides what each means here.

    =====================  ===============================  =====================================
    the job here           the change                       what happens here
    =====================  ===============================  =====================================
    live, waiting          owned by another manager         dropped (retried there), then as below
    live, waiting          canceled (cancel requested)      retired as canceled elsewhere
    live, executing        cancel requested                 canceled (it is stopped)
    live                   anything else                    nothing: this manager writes it
    not live               changed                          published; if done, waiters woken
    not live               deleted (its final info known)   published; waiters woken with it
    not live               deleted (nothing known)          waiters woken (they read the store)
    =====================  ===============================  =====================================

    It holds no state of its own.
    """

    __slots__ = ("_publisher", "_recorder", "_waiters")

    def __init__(self, recorder: Recorder, publisher: Publisher, waiters: Waiters) -> None:
        self._recorder = recorder
        self._publisher = publisher
        self._waiters = waiters

    async def run(self, feed: StoreFeed) -> None:
        """Apply the feed's changes until the feed ends or the task is cancelled.

        While the database is away the feed is read again with backoff (a feed goes on
        from the last change it reported), so the manager carries on meanwhile.
        """
        try:
            await backoff()(self._follow, feed)
        finally:
            feed.close()

    async def _follow(self, feed: StoreFeed) -> None:
        async for changes in feed:
            for change in changes:
                self.apply(change)

    def apply(self, change: StoreChange) -> None:
        """One row of the table above."""
        recorder = self._recorder
        entry = recorder.entries.get(change.job_id)
        info = change.info
        if entry is not None and change.owner and change.owner != recorder.origin:
            record = entry.record
            if record.state is State.CREATED or record.owner != recorder.origin:
                # Canceled and retried by another manager: that one's now (a local copy still
                # waiting here, or the store's own record, which says so): what follows is
                # as for any job not live here.
                recorder.taken_elsewhere(entry)
                entry = None
        if entry is not None:
            if not change.cancel_requested:
                return
            waiting = entry.record.state is State.CREATED or entry.record.state is State.CANCELED
            if waiting and (info is None or info.state is State.CANCELED):
                recorder.canceled_elsewhere(entry)
            else:
                recorder.cancel(entry)
            return
        if info is None:  # deleted
            final = change.final
            self._waiters.wake(change.job_id, final)
            if final is not None:
                self._publisher.final(final)
            return
        self._publisher.info(info)
        if info.state.is_done:
            self._waiters.wake(info.id, info)
