"""Group commit: a store that writes new records and updates in one transaction.

Optional, as :class:`~anyjob.stores._base.InsertMany` is: a manager over a store with
:meth:`GroupWrite.write` puts the new jobs of its submitters, the claims of its workers
and the ends of its jobs meanwhile in one write, instead of one transaction each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from anyjob._exceptions import StoreError
from anyjob._records import JobRecord
from anyjob.stores._base import RecordUpdate

__all__ = ["GroupWrite", "InsertedError"]


class InsertedError(StoreError):
    """:meth:`GroupWrite.write` lost its ``COMMIT``'s answer, and found it was written.

    Its records are stored; whether each update applied is not known (the caller treats
    them as after any other failed write: it writes them again, expecting what it expected).
    """

    __qualname__ = "StoreError"  # as users would see it, were it to reach them


class GroupWrite(Protocol):
    """A store that inserts records and applies updates in one transaction."""

    async def write(
        self, records: Sequence[JobRecord], updates: Sequence[RecordUpdate], *, origin: str
    ) -> list[bool]:
        """Add *records* (as ``insert_many`` does), then apply *updates* (as ``apply`` does), by *origin*.

        All or nothing. Returns, for each update, whether it applied. Empty *records*
        and *updates* write nothing (a checkpoint all the same).

        Raises:
            anyjob.JobError: A record with one of those ids exists, or two share one;
                nothing is written.
            InsertedError: The write was committed but its answer lost: the records are
                stored, the updates' outcomes unknown.
            anyjob.StoreError: The store failed (the cause chained); no record was added
                (updates alone may have been applied if the answer was lost, as with ``apply``).
        """
        ...
