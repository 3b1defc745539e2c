"""External jobs reported on by another OS process, over one SQLite file and over PostgreSQL.

Process A (this one, on asyncio and on trio) opens a JobManager over the store and
``create``s a job; process B (tests/external_reporter.py, on asyncio) opens its own
JobManager over the same store and reports on the job by id. Every handshake is
event-driven: A waits on the job's events or on ``wait``; B, when it must wait for A,
waits for a line on its stdin. The timeouts are generous and only catch a hang.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import anyio.abc
import pytest

from anyjob import JobEvent, JobManager, State
from anyjob.stores import PostgresStore, SQLiteStore
from conftest import POSTGRES_DSN, drop_postgres_schemas
from external_reporter import EXIT_CANCELED

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]

TIMEOUT = 30.0
REPORTER = pathlib.Path(__file__).with_name("external_reporter.py")


class Shared:
    """A's store, and how B names it on its command line (``sqlite:PATH``, ``postgres:SCHEMA``)."""

    def __init__(self, store: SQLiteStore | PostgresStore, spec: str) -> None:
        self.store = store
        self.spec = spec


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Shared]:
    """A fresh SQLite file, or a fresh PostgreSQL schema (dropped after the test)."""
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"
        made = Shared(SQLiteStore(path, poll_interval=0.02), f"sqlite:{path}")
        schema = None
    else:
        schema = f"anyjob_test_{uuid.uuid4().hex[:16]}"
        made = Shared(PostgresStore(POSTGRES_DSN, schema=schema, poll_interval=0.02), f"postgres:{schema}")
    try:
        yield made
    finally:
        made.store.close()
        if schema is not None:
            drop_postgres_schemas([schema])


class Reporter:
    """Process B: its stdin, its exit, and what it wrote (stdout and stderr, to a file)."""

    def __init__(self, process: anyio.abc.Process, output: pathlib.Path) -> None:
        self.process = process
        self._output = output

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self._output.read_text(errors="replace")

    async def say(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line.encode() + b"\n")

    async def exited(self) -> int:
        """B's exit status, once it exits (a hang fails the test with what B wrote)."""
        with anyio.move_on_after(TIMEOUT):
            return await self.process.wait()
        pytest.fail(f"the reporter did not exit in {TIMEOUT} s; it wrote: {self.output()!r}")

    def kill(self) -> None:
        self.process.kill()

    async def wrote(self, text: str) -> None:
        """Until B's output holds *text* (B's report may reach A before B prints what followed it)."""
        with anyio.move_on_after(TIMEOUT):
            while text not in self.output():  # noqa: ASYNC110 - another process's file
                await anyio.sleep(0.01)
            return
        pytest.fail(f"the reporter did not write {text!r} in {TIMEOUT} s; it wrote: {self.output()!r}")


@contextlib.asynccontextmanager
async def reporter(tmp_path: pathlib.Path, shared: Shared, job_id: str, mode: str) -> AsyncIterator[Reporter]:
    """Process B reporting on *job_id* in *mode* (see tests/external_reporter.py); killed if still running."""
    output = tmp_path / f"reporter-{mode}-{uuid.uuid4().hex[:8]}.txt"
    env = {**os.environ, "ANYJOB_TEST_POSTGRES": POSTGRES_DSN}
    with output.open("wb") as written:
        process = await anyio.open_process(
            [sys.executable, str(REPORTER), shared.spec, job_id, mode],
            stdin=subprocess.PIPE,
            stdout=written,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield Reporter(process, output)
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.aclose()


async def events_until(
    events: AsyncIterator[JobEvent], seen: list[JobEvent], done: Callable[[JobEvent], bool], b: Reporter
) -> JobEvent:
    """The first event that is *done* (each one before it, and it, appended to *seen*)."""
    with anyio.move_on_after(TIMEOUT):
        async for event in events:
            seen.append(event)
            if done(event):
                return event
        pytest.fail(f"A's events ended before the one awaited: {seen}; B wrote {b.output()!r}")
    pytest.fail(f"A's events did not bring the one awaited in {TIMEOUT} s: {seen}; B wrote {b.output()!r}")


def states(seen: list[JobEvent]) -> list[str]:
    """The states in *seen*, repeats merged (progress reports of one state are one entry)."""
    merged: list[str] = []
    for event in seen:
        if not merged or merged[-1] != event.state.value:
            merged.append(event.state.value)
    return merged


def assert_transitions(seen: list[JobEvent]) -> None:
    """Every change of state A saw is one a record may make."""
    for before, after in itertools.pairwise(seen):
        assert before.state is after.state or before.state.can_become(after.state, record=True), states(seen)


async def test_progress_from_another_process_is_seen_live_then_its_result(
    shared: Shared, tmp_path: pathlib.Path
) -> None:
    async with JobManager(shared.store) as jobs:
        ref = await jobs.create("export", {"rows": 3})
        events = jobs.events(ref.id)
        seen: list[JobEvent] = []
        async with reporter(tmp_path, shared, ref.id, "complete") as b:
            live = await events_until(
                events,
                seen,
                lambda e: e.state.is_done or (e.state is State.RUNNING and 0 < e.progress < 1),
                b,
            )
            assert live.state is State.RUNNING, f"the job ended before A saw progress: {seen}"
            assert (live.progress, live.message) == (0.25, "a quarter")
            await b.say("go")  # B goes on only now: the progress was seen before the end
            end = await events_until(events, seen, lambda e: e.state.is_done, b)
            info = await jobs.wait(ref.id, timeout=TIMEOUT)
            assert await b.exited() == 0, b.output()
            assert "done" in b.output()
        events.close()
    assert end.state is State.SUCCEEDED
    assert seen.index(live) < seen.index(end)
    assert_transitions(seen)
    assert info is not None
    assert (info.state, info.result, info.progress, info.message, info.attempts) == (
        State.SUCCEEDED,
        {"rows": 3, "by": b.pid},
        0.75,
        "half",
        1,
    )
    assert info.started_at is not None
    assert info.ended_at is not None
    assert info.ended_at >= info.started_at


async def test_a_cancel_reaches_the_reporter_in_another_process(
    shared: Shared, tmp_path: pathlib.Path
) -> None:
    async with JobManager(shared.store) as jobs:
        ref = await jobs.create("loop")
        events = jobs.events(ref.id)
        seen: list[JobEvent] = []
        async with reporter(tmp_path, shared, ref.id, "until-canceled") as b:
            running = await events_until(events, seen, lambda e: e.state is not State.CREATED, b)
            assert running.state is State.RUNNING, seen
            assert await jobs.cancel(ref.id) is True
            assert await b.exited() == EXIT_CANCELED, b.output()
            info = await jobs.wait(ref.id, timeout=TIMEOUT)
            await events_until(events, seen, lambda e: e.state.is_done, b)
        assert await jobs.cancel(ref.id) is False
        events.close()
    assert "canceled after" in b.output()
    assert info is not None
    assert info.state is State.CANCELED
    assert (info.error, info.result) == (None, None)
    assert info.ended_at is not None
    assert_transitions(seen)
    assert states(seen)[-2:] == ["canceling", "canceled"], states(seen)


@pytest.mark.parametrize("how", ["once", "hang"])
async def test_a_reporter_gone_silent_ends_failed_job_lost(
    shared: Shared, tmp_path: pathlib.Path, how: str
) -> None:
    """B reports once, then exits (``once``) or is killed (``hang``): stale_after ends the job."""
    async with JobManager(shared.store) as jobs:
        ref = await jobs.create("silent", stale_after=0.5)
        events = jobs.events(ref.id)
        seen: list[JobEvent] = []
        async with reporter(tmp_path, shared, ref.id, how) as b:
            first = await events_until(events, seen, lambda e: e.state is not State.CREATED, b)
            if how == "hang":
                assert first.state is State.RUNNING, seen
                await b.wrote("reported")
                b.kill()
                assert await b.exited() != 0
            else:
                assert await b.exited() == 0, b.output()
            info = await jobs.wait(ref.id, timeout=TIMEOUT)
            if not first.state.is_done:
                await events_until(events, seen, lambda e: e.state.is_done, b)
        events.close()
    assert "reported" in b.output()
    assert info is not None
    assert (info.state, info.error_type, info.error) == (
        State.FAILED,
        "JobLostError",
        "no report for 0.5 s (stale_after)",
    )
    assert (info.progress, info.message, info.attempts) == (0.3, "once", 1)
    assert info.ended_at is not None
    assert_transitions(seen)
    # A saw it RUNNING before it ended (when B exited at once, its feed may have read the two as one).
    assert states(seen)[-2:] == ["running", "failed"] or (how == "once" and states(seen) == ["failed"]), seen
