"""``anyjob.progress.show``: a manager's jobs live in the terminal, or as plain lines when not one."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import pytest
from rich.console import Console
from tests.manager.support import until

import anyjob
import anyjob.progress
from anyjob import State
from anyjob.progress import _clock as clock
from anyjob.progress import _Row
from anyjob.stores import MemoryStore

pytestmark = pytest.mark.anyio


def recording(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100, color_system=None), out


async def steps(ctx: anyjob.Context) -> int:
    for i in range(4):
        await anyio.lowlevel.checkpoint()
        ctx.set_progress((i + 1) / 4, f"step {i + 1}")
    return 4


async def fails(ctx: anyjob.Context) -> None:
    ctx.set_progress(0.3, "trying")
    await anyio.lowlevel.checkpoint()
    msg = "disk full"
    raise OSError(msg)


class Gate:
    """A job that reports half its progress, then waits to be let go (or canceled)."""

    def __init__(self) -> None:
        self.halfway = anyio.Event()
        self.go = anyio.Event()

    async def __call__(self, ctx: anyjob.Context) -> str:
        ctx.set_progress(0.5, "halfway there")
        self.halfway.set()
        await self.go.wait()
        return "through"


async def test_plain_lines_when_not_a_terminal(silent) -> None:
    console, out = recording(terminal=False)
    async with anyjob.JobManager() as jobs:
        async with anyjob.progress.show(jobs, console=console) as display:
            assert not display.live
            ok = await jobs.submit(steps, name="steps")
            bad = await jobs.submit(fails, name="fails")
            async for _ in jobs.as_completed([ok.id, bad.id]):
                pass
    lines = out.getvalue().splitlines()
    assert lines[0] in {"steps running", "fails running"}
    # Progress a slow reader has not taken yet is coalesced: some steps may be skipped.
    shown = [line for line in lines if line.startswith("steps ") and "% step" in line]
    assert set(shown) <= {f"steps {p:4.0%} step {i}" for i, p in [(1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0)]}
    assert shown == sorted(shown, key=lambda line: int(line.split()[1].rstrip("%")))
    assert any(re.fullmatch(r"✓ steps succeeded in \d+\.\d\d s", line) for line in lines), lines
    assert any(re.fullmatch(r"✗ fails failed in \d+\.\d\d s: OSError: disk full", line) for line in lines), (
        lines
    )
    assert "\x1b[" not in out.getvalue()  # no cursor movement, no colour: a log reads it
    assert display.states() == {ok.id: State.SUCCEEDED, bad.id: State.FAILED}
    assert display.counts()[State.SUCCEEDED] == display.counts()[State.FAILED] == 1


async def test_bars_with_message_elapsed_and_eta_redrawn_in_place(silent) -> None:
    console, out = recording(terminal=True)
    gate = Gate()
    async with anyjob.JobManager() as jobs:
        async with anyjob.progress.show(jobs, console=console, refresh_per_second=50) as display:
            assert display.live
            ref = await jobs.submit(gate, name="gated")
            await gate.halfway.wait()
            await until(lambda: display.states().get(ref.id) is State.RUNNING)
            frame, frame_out = recording(terminal=False)
            frame.print(display)
            row = next(line for line in frame_out.getvalue().splitlines() if line.startswith("gated"))
            assert re.search(r"gated +━+ +50% 0:00:\d\d ETA 0:00:\d\d halfway there", row), row
            assert "running 1" in frame_out.getvalue()
            await until(lambda: "halfway there" in out.getvalue())  # drawn live too, by its own task
            gate.go.set()
            await jobs.wait(ref.id)
    text = out.getvalue()
    assert "\x1b[1A" in text  # the cursor goes back up: each frame replaces the one before
    assert "\x1b[2K" in text
    assert "✓ gated succeeded in" in text
    assert text.count("halfway there") >= 1
    final = text.rsplit("\x1b[2K", 1)[-1]
    assert "succeeded 1" in final  # the last frame: nothing running, one succeeded


async def test_eta_is_unknown_before_any_progress_then_follows_the_pace() -> None:
    start = datetime.now(UTC)
    row = _Row("id", "name", State.RUNNING, 0.0, None, started_at=start, ended_at=None, updated_at=start)
    assert clock(row.eta(start + timedelta(seconds=30))) == "-:--:--"
    row.progress = 0.25
    assert row.eta(start + timedelta(seconds=30)) == pytest.approx(90.0)  # a quarter in 30 s: 90 s to go
    assert clock(row.elapsed(start + timedelta(seconds=30))) == "0:00:30"
    assert clock(90.0) == "0:01:30"
    assert clock(3725.0) == "1:02:05"


async def test_only_the_jobs_asked_for(silent) -> None:
    console, out = recording(terminal=False)
    async with anyjob.JobManager() as jobs:
        async with anyjob.progress.show(jobs, ids=["wanted"], console=console) as display:
            other = await jobs.submit(steps, name="other")
            wanted = await jobs.submit(steps, name="wanted", id="wanted")
            async for _ in jobs.as_completed([other.id, wanted.id]):
                pass
    assert "wanted running" in out.getvalue()
    assert "other" not in out.getvalue()
    assert display.states() == {"wanted": State.SUCCEEDED}


async def test_jobs_running_at_entry_and_jobs_of_another_manager_are_shown(silent) -> None:
    console, out = recording(terminal=False)
    store = MemoryStore()
    gate = Gate()
    async with anyjob.JobManager(store) as runner, anyjob.JobManager(store) as watcher:
        ref = await runner.submit(gate, name="elsewhere")
        await gate.halfway.wait()
        await until(lambda: store.__len__() == 1)
        async with anyjob.progress.show(watcher, console=console) as display:
            assert display.states() == {ref.id: State.RUNNING}  # caught up at entry
            gate.go.set()
            assert (await watcher.wait(ref.id)) is not None
            await until(lambda: display.states()[ref.id] is State.SUCCEEDED)
    lines = out.getvalue().splitlines()
    assert lines[0] == "elsewhere running"
    assert "elsewhere  50% halfway there" in lines
    assert any(line.startswith("✓ elsewhere succeeded") for line in lines)


async def test_a_canceled_job_and_leaving_touches_no_job(silent) -> None:
    console, out = recording(terminal=False)
    gate = Gate()
    async with anyjob.JobManager() as jobs:
        async with anyjob.progress.show(jobs, console=console) as display:
            first = await jobs.submit(gate, name="first")
            await gate.halfway.wait()
            await jobs.cancel(first.id)
            await jobs.wait(first.id)
            display.print("a line of the script's own")
        second_gate = Gate()
        jobs_second = await jobs.submit(second_gate, name="second")
        async with anyjob.progress.show(jobs, console=console):
            await second_gate.halfway.wait()
        assert (
            await jobs.status(jobs_second.id) is State.RUNNING
        )  # leaving waited for nothing, canceled nothing
        second_gate.go.set()
        await jobs.wait(jobs_second.id)
    lines = out.getvalue().splitlines()
    assert any(line.startswith("■ first canceled in") for line in lines)
    assert "a line of the script's own" in lines


async def test_bad_arguments_are_refused_where_they_enter() -> None:
    with pytest.raises(TypeError, match="jobs must be a JobManager, not str"):
        anyjob.progress.show("jobs")  # type: ignore[arg-type]
    manager = anyjob.JobManager()
    with pytest.raises(TypeError, match="ids must be several job ids"):
        anyjob.progress.show(manager, ids="one-id")
    with pytest.raises(ValueError, match=r"refresh_per_second must be a number in \(0, 100.0\], got 0"):
        anyjob.progress.show(manager, refresh_per_second=0)
    with pytest.raises(anyjob.ManagerClosedError):
        async with anyjob.progress.show(manager):
            pass


async def test_summary_table(silent) -> None:
    console, out = recording(terminal=False)
    async with anyjob.JobManager() as jobs:
        ok = await jobs.submit(steps, name="steps")
        bad = await jobs.submit(fails, name="fails")
        infos = [info async for info in jobs.as_completed([ok.id, bad.id])]
    console.print(anyjob.progress.summary_table(sorted(infos, key=lambda info: info.name)))
    text = out.getvalue()
    assert text.startswith("Summary")
    fails_row = next(line for line in text.splitlines() if "fails" in line)
    assert "failed" in fails_row
    assert "OSError: disk full" in fails_row
    steps_row = next(line for line in text.splitlines() if "steps" in line)
    assert "succeeded" in steps_row
    assert "100%" in steps_row


async def test_a_long_watch_keeps_only_the_latest_finished_jobs(silent, monkeypatch) -> None:
    monkeypatch.setattr(anyjob.progress, "_KEEP_ENDED", 3)
    console, _ = recording(terminal=False)
    ended: list[str] = []
    async with anyjob.JobManager() as jobs:
        async with anyjob.progress.show(jobs, console=console) as display:
            for i in range(5):  # one after another, each seen ending before the next
                ref = await jobs.submit(steps, name=f"steps-{i}")
                await jobs.wait(ref.id)
                await until(lambda ref=ref: display.states().get(ref.id) is State.SUCCEEDED)
                ended.append(ref.id)
    assert set(display.states()) == set(ended[2:])  # the latest three to end are kept
    assert display.counts()[State.SUCCEEDED] == 5  # the others still count
