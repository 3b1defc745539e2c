"""The job states and the one transition table every state change goes through."""

from __future__ import annotations

import enum
from typing import Final, final

__all__ = ["State"]


@final
class State(enum.Enum):
    """The state of a job.

    ``CREATED`` means accepted but not started (waiting, queued or scheduled).
    ``RUNNING`` and ``CANCELING`` are *executing*; ``SUCCEEDED``, ``FAILED`` and
    ``CANCELED`` are *done*. A done job may run again.
    """

    CREATED = "created"
    RUNNING = "running"
    CANCELING = "canceling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    # Filled in below from the tables; plain attributes keep the hot path free of
    # Enum.__hash__ (a Python-level call).
    # Members are singletons compared by identity (Enum's default): hashing by
    # identity in C is consistent with that and much cheaper than Enum.__hash__
    # (a Python call hashing the name), which every dict and set keyed by State pays.
    __hash__ = object.__hash__

    _bit: int
    _index: int
    _job_mask: int
    _record_mask: int

    @property
    def is_done(self) -> bool:
        """True for ``SUCCEEDED``, ``FAILED`` and ``CANCELED``."""
        return self._bit & _DONE_MASK != 0

    @property
    def is_executing(self) -> bool:
        """True for ``RUNNING`` and ``CANCELING``."""
        return self._bit & _EXECUTING_MASK != 0

    def can_become(self, new: State, *, record: bool = False) -> bool:
        """Whether a change from this state to *new* is allowed.

        Args:
            new: The state to change to.
            record: Also allow the changes that only records kept by a
                ``JobManager`` make: ``CREATED -> CANCELED`` (a waiting job is
                canceled) and ``FAILED``/``CANCELED -> CREATED`` (``retry``).
        """
        return new._bit & (self._record_mask if record else self._job_mask) != 0


#: The transitions a :class:`~anyjob.Job` makes. Nothing else decides what may follow what.
JOB_TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.CREATED: frozenset({State.RUNNING}),
    State.RUNNING: frozenset({State.CANCELING, State.SUCCEEDED, State.FAILED, State.CANCELED}),
    State.CANCELING: frozenset({State.CANCELED}),
    State.SUCCEEDED: frozenset({State.RUNNING}),
    State.FAILED: frozenset({State.RUNNING}),
    State.CANCELED: frozenset({State.RUNNING}),
}

#: The extra transitions only a manager's records make.
RECORD_ONLY_TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.CREATED: frozenset({State.CANCELED}),
    State.RUNNING: frozenset(),
    State.CANCELING: frozenset(),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset({State.CREATED}),
    State.CANCELED: frozenset({State.CREATED}),
}


def _mask(states: frozenset[State]) -> int:
    return sum(state._bit for state in states)


for _index, _member in enumerate(State):
    object.__setattr__(_member, "_bit", 1 << _index)
    object.__setattr__(_member, "_index", _index)
for _member in State:
    object.__setattr__(_member, "_job_mask", _mask(JOB_TRANSITIONS[_member]))
    object.__setattr__(
        _member,
        "_record_mask",
        _mask(JOB_TRANSITIONS[_member] | RECORD_ONLY_TRANSITIONS[_member]),
    )
_DONE_MASK: Final = _mask(frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED}))
_EXECUTING_MASK: Final = _mask(frozenset({State.RUNNING, State.CANCELING}))
