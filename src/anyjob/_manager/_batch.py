"""Batch: what waits for a BatchSink's next write, answered together (group commit).

The workers' claims (CREATED to RUNNING, each only while the job still waits and is
still this manager's) and, over a store that can write them in the same transaction
(:class:`~anyjob.stores._grouped.GroupWrite`), the records of the submitters meanwhile.
The sink takes the batch whole when it writes (``taken``), then answers each part:
whether each claim applied, whether each submitter's records are stored (or the error
that refused them); ``done`` fires once everything is answered.
"""

from __future__ import annotations

from typing import Final, final

from anyjob._exceptions import StoreError
from anyjob._records import JobRecord
from anyjob._signal import Signal
from anyjob.stores._base import RecordUpdate

__all__ = ["Batch"]

#: The answer of records that were stored.
_STORED: Final = None


@final
class Batch:
    """The claims and new records for one write; a part withdrawn before it is taken is ``None``."""

    __slots__ = ("answered", "claimed", "claims", "done", "error", "inserted", "inserts", "taken")

    def __init__(self) -> None:
        self.claims: list[RecordUpdate | None] = []
        self.inserts: list[list[JobRecord] | None] = []
        self.taken = False
        self.answered = False
        #: Whether each claim applied, by its place in ``claims`` (None: the write failed).
        self.claimed: list[bool] | None = None
        #: Why the claims were not written (each claimer then tries again on its own).
        self.error: StoreError | None = None
        #: Each submitter's answer, by its place in ``inserts``: None when stored.
        self.inserted: dict[int, BaseException | None] = {}
        self.done = Signal()  # fired once, when answered

    def __bool__(self) -> bool:
        return bool(self.claims or self.inserts)

    def add_claim(self, update: RecordUpdate) -> int:
        """A worker's claim; its place."""
        self.claims.append(update)
        return len(self.claims) - 1

    def add_records(self, records: list[JobRecord]) -> int:
        """A submitter's new records; their place."""
        self.inserts.append(records)
        return len(self.inserts) - 1

    def take(self) -> tuple[list[RecordUpdate], list[JobRecord]]:
        """The claims and records to write now (those not withdrawn), in order."""
        self.taken = True
        claims = [update for update in self.claims if update is not None]
        records = [record for records in self.inserts if records is not None for record in records]
        return claims, records

    def withdraw_claim(self, index: int) -> bool:
        """Withdraw a claim not taken yet (its worker was cancelled); whether it was not."""
        if self.taken:
            return False
        self.claims[index] = None
        return True

    def withdraw_records(self, index: int) -> bool:
        """Withdraw records not taken yet (their submitter was cancelled); whether they were not."""
        if self.taken:
            return False
        self.inserts[index] = None
        return True

    def stored(self, index: int) -> bool:
        """Whether the records at *index* were stored (once answered)."""
        return index in self.inserted and self.inserted[index] is _STORED

    def record_stored(self, index: int) -> None:
        """The records at *index* are stored."""
        self.inserted[index] = _STORED

    def records_stored(self) -> None:
        """Every submitter's records are stored."""
        for index, records in enumerate(self.inserts):
            if records is not None:
                self.inserted[index] = _STORED

    def records_refused(self, index: int, error: BaseException) -> None:
        """The records at *index* were not stored, for *error*."""
        self.inserted[index] = error

    def answer_claims(self, claims: list[RecordUpdate], applied: list[bool]) -> None:
        """The claims are committed: whether each applied."""
        by_update = dict(zip(map(id, claims), applied, strict=True))
        self.claimed = [update is not None and by_update[id(update)] for update in self.claims]

    def fail_claims(self, error: StoreError) -> None:
        """The claims were not written (or their answers were lost)."""
        self.error = error

    def finish(self) -> None:
        """Everything is answered: wake who waits (records not answered: not stored)."""
        for index, records in enumerate(self.inserts):
            if records is not None and index not in self.inserted:
                self.inserted[index] = self.error or StoreError("the write of these new jobs did not happen")
        if self.claimed is None and self.error is None and self.claims:
            self.error = StoreError("the write of these claims did not happen")
        self.answered = True
        self.done.fire()

    def answer_of(self, index: int) -> BaseException | None:
        """The submitter's answer at *index*: None when stored, else the error to raise."""
        return self.inserted.get(index)
