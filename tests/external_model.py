"""The model, strategies and limits of the external-jobs state machine (``tests.external_model``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from anyjob import (
    JobInfo,
    State,
)

TIMEOUT = 30.0
#: A short ``stale_after``: a job silent this long is ended by a sweep (seen with a timeout, never a sleep).
SHORT = 0.05
#: A ``stale_after`` no example lives to see.
LONG = 3600.0
LOST = "JobLostError"
#: How often the SQL stores' feeds poll (seconds).
POLL = 0.005

_CREATED = State.CREATED
_RUNNING = State.RUNNING
_CANCELING = State.CANCELING
_SUCCEEDED = State.SUCCEEDED
_FAILED = State.FAILED
_CANCELED = State.CANCELED

VIA = st.sampled_from(["A", "B"])
STALE_AFTER = st.sampled_from([None, LONG, SHORT])
PROGRESS = st.one_of(st.none(), st.floats(0, 1))
RESULTS = st.sampled_from([None, 1, "ok", {"rows": 3}, [1, "two", None]])
FAILURES = st.sampled_from(["str", "raised", "unraised"])
#: (the report, its arguments, the error it must raise with nothing changed).
INVALID = [
    ("update", {"progress": -0.1}, ValueError),
    ("update", {"progress": 1.5}, ValueError),
    ("update", {"progress": math.nan}, ValueError),
    ("update", {"progress": math.inf}, ValueError),
    ("update", {"progress": True}, TypeError),
    ("update", {"progress": "0.5"}, TypeError),
    ("update", {"message": 3}, TypeError),
    ("complete", {"result": {1, 2}}, TypeError),
    ("complete", {"result": math.inf}, ValueError),
    ("fail", {"error": 42}, TypeError),
]


class Upstream:
    """A namespace: ``fail`` records an exception's qualified type name (``Upstream.Gone``)."""

    class Gone(Exception):  # noqa: N818 - a name to find in error_type
        pass


def failure(kind: str, job_id: str) -> str | BaseException:
    """What ``fail`` is given: a str, an exception raised (with a traceback), or one never raised."""
    if kind == "str":
        return f"disk full ({job_id})"
    if kind == "raised":
        try:
            msg = f"upstream gone ({job_id})"
            raise Upstream.Gone(msg)  # a traceback to keep
        except Upstream.Gone as exc:
            return exc
    return ConnectionError(f"no route ({job_id})")


def step_allowed(before: State, after: State) -> bool:
    """Whether an observer may see *after* next after *before*.

    The same state again (progress), a record transition, or a ``complete``/``fail``
    of a job never updated, which passes through RUNNING in one write.
    """
    if before is after or before.can_become(after, record=True):
        return True
    return (
        before is _CREATED
        and after in {_SUCCEEDED, _FAILED}
        and before.can_become(_RUNNING, record=True)
        and _RUNNING.can_become(after, record=True)
    )


@dataclass
class Model:
    """What the rules did to one job: what every read of it must show."""

    name: str
    params: Any
    stale_after: float | None
    made_by: str
    message: str | None
    state: State = _CREATED
    progress: float = 0.0
    attempts: int = 0
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None  # a text the traceback must contain, when there is one
    started: bool = False
    ended: bool = False
    expired: bool = False  # ended by a sweep
    updated_at: datetime | None = None  # the latest seen: it never goes back (but for a retry)
    waited: bool = False  # wait() of this end was checked

    @property
    def may_go_stale(self) -> bool:
        """A sweep may end it at any moment."""
        return self.stale_after == SHORT and self.state.is_executing

    def start(self) -> None:
        if self.state is _CREATED:
            self.state = _RUNNING
            self.started = True
            self.attempts = max(self.attempts, 1)

    def end(self, state: State) -> None:
        self.start()
        self.state = state
        self.ended = True
        self.waited = False

    def expire(self) -> None:
        assert self.may_go_stale
        if self.state is _RUNNING:
            self.error = f"no report for {SHORT} s (stale_after)"
            self.error_type = LOST
        self.end(_FAILED if self.state is _RUNNING else _CANCELED)
        self.expired = True

    def expired_looks_like(self, info: JobInfo) -> bool:
        """Whether *info* is this job as a sweep would have ended it."""
        if not self.may_go_stale:
            return False
        if self.state is _RUNNING:
            return info.state is _FAILED and info.error_type == LOST
        return info.state is _CANCELED

    def requeue(self) -> None:
        self.state = _CREATED
        self.attempts += 1
        self.progress = 0.0
        self.message = None
        self.result = None
        self.error = self.error_type = self.traceback = None
        self.started = self.ended = self.expired = False
        self.updated_at = None  # its runs' times are gone: it shows its creation time again

    def check(self, info: JobInfo | None, where: str) -> None:
        assert info is not None, f"{where}: the job is gone"
        got = (info.state, info.progress, info.message, info.attempts, info.result)
        want = (self.state, self.progress, self.message, self.attempts, self.result)
        assert got == want, f"{where}: {info!r} is not as modeled: {self!r}"
        assert (info.name, info.params, dict(info.labels)) == (
            self.name,
            self.params,
            {"made_by": self.made_by},
        )
        assert (info.started_at is not None, info.ended_at is not None) == (self.started, self.ended), where
        if self.updated_at is not None:
            assert info.updated_at >= self.updated_at, f"{where}: updated_at went back: {info!r}"
        self.updated_at = info.updated_at
        if info.started_at is not None:
            assert info.updated_at >= info.started_at, where
        if info.ended_at is not None and info.started_at is not None:
            assert info.ended_at >= info.started_at, where
            assert info.duration is not None, where
        if self.state is _CANCELED and self.expired:
            assert info.error_type in {None, LOST}, where  # how a canceling job that went silent ended
        else:
            assert (info.error, info.error_type) == (self.error, self.error_type), where
            if self.traceback is None:
                assert info.traceback is None, where
            else:
                assert info.traceback is not None, where
                assert self.traceback in info.traceback, where


class Outcome:
    """What a call through the portal did: its value, or the exception it raised."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    def __repr__(self) -> str:
        return f"Outcome({self.value!r}, error={self.error!r})"


async def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(await call())
    except Exception as exc:
        return Outcome(error=exc)
