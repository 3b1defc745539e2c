"""Tables for people: a job list, one job's details, statistics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from anyjob._records import JobInfo, JobStatistics
from anyjob._state import State

__all__ = ["info_table", "list_table", "stats_table", "stderr", "stdout"]

_STYLE: Final = {
    State.CREATED: "dim",
    State.RUNNING: "cyan",
    State.CANCELING: "yellow",
    State.SUCCEEDED: "green",
    State.FAILED: "red",
    State.CANCELED: "yellow",
}


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _state(state: State) -> Text:
    return Text(state.value, style=_STYLE[state])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def list_table(infos: list[JobInfo]) -> Table:
    """One row per job, newest first: id, name, state, progress, message, created, duration."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, style="dim")
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("state", no_wrap=True)
    table.add_column("progress", justify="right", no_wrap=True)
    table.add_column("message", overflow="ellipsis", max_width=40)
    table.add_column("created", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    for info in infos:
        table.add_row(
            info.id,
            info.name,
            _state(info.state),
            f"{info.progress:.0%}",
            info.message or "",
            _when(info.created_at),
            "-" if info.duration is None else f"{info.duration:.3f} s",
        )
    return table


def info_table(info: JobInfo) -> RenderableType:
    """Every field of one job, then its traceback when it has one."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("id", info.id),
        ("name", info.name),
        ("state", _state(info.state)),
        ("progress", f"{info.progress:.0%}"),
        ("message", info.message or "-"),
        ("labels", ", ".join(f"{k}={v}" for k, v in info.labels.items()) or "-"),
        ("params", _json(info.params)),
        ("result", _json(info.result)),
        ("error", "-" if info.error_type is None else Text(f"{info.error_type}: {info.error}", style="red")),
        ("priority", str(info.priority)),
        ("attempts", str(info.attempts)),
        ("created", _when(info.created_at)),
        ("scheduled", _when(info.scheduled_at)),
        ("started", _when(info.started_at)),
        ("ended", _when(info.ended_at)),
        ("duration", "-" if info.duration is None else f"{info.duration:.3f} s"),
        ("updated", _when(info.updated_at)),
    ]
    for key, value in rows:
        grid.add_row(key, value)
    if info.traceback is None:
        return grid
    return Group(grid, Text(""), Text(info.traceback.rstrip(), style="dim"))


def stats_table(stats: JobStatistics) -> RenderableType:
    """Counts per state, per name, and the totals."""
    by_state = Table(title="by state", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    by_state.add_column("state")
    by_state.add_column("jobs", justify="right")
    for state, count in stats.by_state.items():
        by_state.add_row(_state(state), str(count))
    by_name = Table(title="by name", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    by_name.add_column("name", style="bold")
    by_name.add_column("jobs", justify="right")
    for name, count in sorted(stats.by_name.items()):
        by_name.add_row(name, str(count))
    totals = Text(
        f"{stats.total} jobs, {stats.active} active; success rate {stats.success_rate:.0%}; "
        f"average duration {stats.average_duration:.3f} s"
    )
    return Group(totals, Text(""), by_state, Text(""), by_name)


def stdout() -> Console:
    """The console for a command's output (tables go to stdout; wide enough when piped)."""
    return _wide(Console(highlight=False))


def stderr() -> Console:
    """The console for progress and news while stdout keeps a command's result."""
    return _wide(Console(stderr=True, highlight=False))


def _wide(console: Console) -> Console:
    if not console.is_terminal:
        console.width = max(console.width, 160)  # a log line is not cut at 80 columns
    return console
