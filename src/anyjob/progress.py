"""Live terminal progress of a JobManager's jobs, drawn with rich (``pip install 'anyjob[cli]'``).

A script opens the display around the part that waits for its jobs::

    async with anyjob.JobManager() as jobs, anyjob.progress.show(jobs):
        refs = [await jobs.submit(resize, image) for image in images]
        async for info in jobs.as_completed([ref.id for ref in refs]):
            ...

On a terminal each executing job gets a bar, with its percentage, message, elapsed time and
estimated time left, redrawn in place; each job that ends prints one line above the bars
(its state in words, how long it took, its error). When the output is not a terminal (a
pipe, a file, CI logs) the same news comes as plain lines instead: one when a job starts,
one per tenth of progress, one when it ends.

The display follows :meth:`JobManager.events <anyjob.JobManager.events>`, so it shows the
jobs of every manager sharing the manager's store, not only the ones submitted here.
It redraws from its own anyio task (asyncio and trio), never from a thread.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Self, final

import anyio
import anyio.abc
import attrs

from anyjob._events import EventStream
from anyjob._exceptions import StoreError
from anyjob._manager import JobManager
from anyjob._records import JobEvent, JobInfo
from anyjob._state import State

try:
    from rich.console import Console, Group, RenderableType
    from rich.live import Live
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text
except ImportError as exc:  # pragma: no cover - the extra is installed wherever the tests run
    msg = "anyjob.progress draws with rich: install it with pip install 'anyjob[cli]'"
    raise ImportError(msg) from exc

__all__ = ["Display", "show", "summary_table"]

_EXECUTING: Final = frozenset({State.RUNNING, State.CANCELING})
_ORDER: Final = (State.RUNNING, State.CANCELING, State.CREATED, State.SUCCEEDED, State.FAILED, State.CANCELED)
_MARK: Final = {State.SUCCEEDED: "✓", State.FAILED: "✗", State.CANCELED: "■"}
_STYLE: Final = {
    State.CREATED: "dim",
    State.RUNNING: "cyan",
    State.CANCELING: "yellow",
    State.SUCCEEDED: "green",
    State.FAILED: "red",
    State.CANCELED: "yellow",
}
_MAX_REFRESH: Final = 100.0
#: Finished jobs remembered (for :meth:`Display.states`); older ones only count.
_KEEP_ENDED: Final = 10_000
#: Leaving waits at most this long to show the events buffered so far (a database gone away).
_DRAIN_TIMEOUT: Final = 5.0
_BAR_WIDTH: Final = 28
_NAME_WIDTH: Final = 20


def _clock(seconds: float | None) -> str:
    """*seconds* as ``H:MM:SS`` (``-:--:--`` when unknown)."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-:--:--"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _error_text(info: JobInfo) -> str | None:
    return None if info.error_type is None else f"{info.error_type}: {info.error}"


def _now() -> datetime:
    return datetime.now(UTC)


@attrs.define
class _Row:
    """What the display knows of one job (the latest of its events and queries)."""

    id: str
    name: str
    state: State
    progress: float
    message: str | None
    started_at: datetime | None
    ended_at: datetime | None
    updated_at: datetime
    tenth: int = -1  # the last tenth of progress printed as a plain line

    @classmethod
    def of(cls, info: JobInfo) -> _Row:
        return cls(
            info.id,
            info.name,
            info.state,
            info.progress,
            info.message,
            info.started_at,
            info.ended_at,
            info.updated_at,
        )

    def elapsed(self, now: datetime) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.state.is_done and self.ended_at is not None else now
        return max((end - self.started_at).total_seconds(), 0.0)

    def eta(self, now: datetime) -> float | None:
        """Seconds left at the pace so far: elapsed * (1 - progress) / progress."""
        elapsed = self.elapsed(now)
        if elapsed is None or self.progress <= 0.0:
            return None
        return elapsed * (1.0 - self.progress) / self.progress


@final
class Display:
    """A live view of a manager's jobs in the terminal; made by :func:`show`, used with ``async with``.

    Entering subscribes to the manager's events and starts drawing; leaving stops
    drawing (the final frame stays unless ``transient``). Leaving neither waits for
    nor cancels any job: that stays the script's (or the manager's) business.

    Attributes:
        console: The rich console it draws on. Print through :meth:`print` while the
            display is live, so the text lands above the bars instead of through them.
    """

    __slots__ = (
        "_drained",
        "_ended",
        "_forgotten",
        "_ids",
        "_jobs",
        "_live",
        "_refresh",
        "_rows",
        "_stream",
        "_tg",
        "_transient",
        "console",
    )

    def __init__(
        self,
        jobs: JobManager,
        *,
        ids: Iterable[str] | None = None,
        console: Console | None = None,
        refresh_per_second: float = 8.0,
        transient: bool = False,
    ) -> None:
        if not isinstance(jobs, JobManager):
            msg = f"jobs must be a JobManager, not {type(jobs).__name__}"
            raise TypeError(msg)
        if isinstance(ids, str):
            msg = "ids must be several job ids (a list or set), not one str"
            raise TypeError(msg)
        if not (isinstance(refresh_per_second, int | float) and 0.0 < refresh_per_second <= _MAX_REFRESH):
            msg = f"refresh_per_second must be a number in (0, {_MAX_REFRESH}], got {refresh_per_second!r}"
            raise ValueError(msg)
        self._jobs = jobs
        self._ids: Collection[str] | None = None if ids is None else frozenset(ids)
        self.console = Console() if console is None else console
        self._refresh = 1.0 / refresh_per_second
        self._transient = transient
        self._rows: dict[str, _Row] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()  # ids of finished rows, oldest first
        self._forgotten: Counter[State] = Counter()  # final states of rows no longer kept
        self._live: Live | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._stream: EventStream | None = None
        self._drained: anyio.Event | None = None

    @property
    def live(self) -> bool:
        """Whether bars are redrawn in place (a terminal), rather than printed as plain lines."""
        return self.console.is_terminal

    def states(self) -> dict[str, State]:
        """The latest state of the jobs the display has seen, by id.

        Every job not done is there, and the latest 10,000 finished ones (a display that
        follows a busy store for days does not grow without bound).
        """
        return {job_id: row.state for job_id, row in self._rows.items()}

    def counts(self) -> dict[State, int]:
        """How many of the jobs seen are in each state (every state present).

        Finished jobs no longer in :meth:`states` still count, in their final state.
        """
        counts = dict.fromkeys(State, 0)
        for row in self._rows.values():
            counts[row.state] += 1
        for state, count in self._forgotten.items():
            counts[state] += count
        return counts

    def print(self, *objects: RenderableType, style: str | None = None) -> None:
        """Print *objects* on the display's console, above the live bars."""
        self.console.print(*objects, style=style, highlight=False)

    # -- entering and leaving ----------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._tg is not None:
            msg = "a progress display can be entered only once"
            raise RuntimeError(msg)
        stream = self._jobs.events()  # before the catch-up query: nothing falls in between
        try:
            await self._catch_up()
        except BaseException:
            stream.close()
            raise
        self._stream = stream
        self._drained = anyio.Event()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._follow, stream)
        if self.live:
            self._live = Live(
                self,
                console=self.console,
                auto_refresh=False,  # redrawn by our own task, not rich's thread
                transient=self._transient,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start(refresh=True)
            tg.start_soon(self._redraw)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg = self._tg
        stream = self._stream
        assert tg is not None  # noqa: S101 - set by __aenter__
        drained = self._drained
        assert stream is not None  # noqa: S101
        assert drained is not None  # noqa: S101
        try:
            if exc is None:
                # What happened just before leaving is shown too: the events buffered so far
                # (nothing after them), then a last look at the jobs still open.
                stream.end()
                with anyio.move_on_after(_DRAIN_TIMEOUT, shield=True):
                    await drained.wait()
        finally:
            tg.cancel_scope.cancel()
            try:
                await tg.__aexit__(None, None, None)
            finally:
                stream.close()
                with anyio.CancelScope(shield=True):
                    if exc is None:
                        await self._catch_up(executing_only=True)
                self._stop_drawing()

    def _stop_drawing(self) -> None:
        if self._live is not None:
            self._live.update(self, refresh=True)
            self._live.stop()

    # -- following the jobs ------------------------------------------------------------

    async def _catch_up(self, *, executing_only: bool = False) -> None:
        """Ask the manager for the jobs' current state (at entry: the ones running already)."""
        if executing_only:
            ids = [row.id for row in self._rows.values() if not row.state.is_done]
            infos = [info for job_id in ids if (info := await self._info(job_id)) is not None]
        elif self._ids is not None:
            infos = [info for job_id in self._ids if (info := await self._info(job_id)) is not None]
        else:
            infos = await self._jobs.list(state=(*_EXECUTING, State.CREATED), limit=1000)
        for info in infos:
            row = self._rows.get(info.id)
            if row is None:
                self._rows[info.id] = row = _Row.of(info)
                if not row.state.is_done:
                    self._announce(row, None, None)  # plain lines: what runs already
            elif info.updated_at >= row.updated_at:
                self._change(row, info.state, info.progress, info.message, info.updated_at, _error_text(info))

    async def _info(self, job_id: str) -> JobInfo | None:
        try:
            return await self._jobs.get(job_id)
        except StoreError:
            return None  # the database is away: the next event says more

    async def _follow(self, stream: EventStream) -> None:
        try:
            async for event in stream:
                await self._event(event)
        finally:
            assert self._drained is not None  # noqa: S101 - made before this task
            self._drained.set()

    async def _event(self, event: JobEvent) -> None:
        if self._ids is not None and event.job_id not in self._ids:
            return
        row = self._rows.get(event.job_id)
        if row is None:
            info = await self._info(event.job_id)  # its name and start; at least as new as the event
            if info is None:
                return
            self._rows[info.id] = row = _Row.of(info)
            self._announce(row, None, _error_text(info))
            return
        if event.at < row.updated_at:
            return  # older than what a query already told
        error = None
        if event.state is State.FAILED and not row.state.is_done:
            info = await self._info(row.id)  # the event does not carry the error
            error = None if info is None else _error_text(info)
        self._change(row, event.state, event.progress, event.message, event.at, error)

    def _change(  # noqa: PLR0917 - one job's fields
        self,
        row: _Row,
        state: State,
        progress: float,
        message: str | None,
        at: datetime,
        error: str | None,
    ) -> None:
        before = row.state
        if state is State.RUNNING and before is not State.RUNNING:
            row.started_at, row.ended_at, row.tenth = at, None, -1
        if state.is_done and not before.is_done:
            row.ended_at = at
        row.state, row.progress, row.message, row.updated_at = state, progress, message, at
        self._announce(row, before, error)

    def _announce(self, row: _Row, before: State | None, error: str | None) -> None:
        """Print what is news about *row*: a start or progress (plain lines only), or an end."""
        if row.state.is_done:
            if before is not None and before.is_done:
                return
            self._remember_ended(row)
            line = self._ended_line(row)
            if row.state is State.FAILED and error is not None:
                line.append(f": {error}", style="red")
            self.print(line)
            return
        if self.live or row.state not in _EXECUTING:
            return
        if before is not row.state:
            self.print(Text.assemble((row.name, "bold"), " ", (row.state.value, _STYLE[row.state])))
        tenth = math.floor(row.progress * 10)
        if tenth > row.tenth and row.progress > 0.0:
            row.tenth = tenth
            self.print(f"{row.name} {row.progress:4.0%} {row.message or ''}".rstrip())

    def _remember_ended(self, row: _Row) -> None:
        self._ended[row.id] = None
        self._ended.move_to_end(row.id)
        while len(self._ended) > _KEEP_ENDED:
            oldest, _ = self._ended.popitem(last=False)
            kept = self._rows.get(oldest)
            if kept is not None and kept.state.is_done:  # not one that runs again meanwhile
                del self._rows[oldest]
                self._forgotten[kept.state] += 1

    def _ended_line(self, row: _Row) -> Text:
        took = row.elapsed(_now())
        timing = "" if took is None else f" in {took:.2f} s"
        return Text.assemble(
            (f"{_MARK[row.state]} ", _STYLE[row.state]),
            (row.name, "bold"),
            " ",
            (row.state.value, _STYLE[row.state]),
            timing,
        )

    # -- drawing -----------------------------------------------------------------------

    async def _redraw(self) -> None:
        live = self._live
        assert live is not None  # noqa: S101 - started before this task
        while True:
            await anyio.sleep(self._refresh)
            live.update(self, refresh=True)

    def __rich__(self) -> RenderableType:
        now = _now()
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, max_width=_NAME_WIDTH)
        table.add_column(width=_BAR_WIDTH)
        table.add_column(justify="right", width=4)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        executing = [row for row in self._rows.values() if row.state in _EXECUTING]
        executing.sort(key=lambda row: (row.started_at or now, row.id))  # stable: redrawn in place
        for row in executing:
            name = Text(row.name, style="bold")
            if row.state is State.CANCELING:
                name.append(" canceling", style=_STYLE[State.CANCELING])
            table.add_row(
                name,
                ProgressBar(total=1.0, completed=row.progress, width=_BAR_WIDTH),
                f"{row.progress:.0%}",
                _clock(row.elapsed(now)),
                f"ETA {_clock(row.eta(now))}",
                Text(row.message or "", style="dim"),
            )
        counts = self.counts()
        footer = Text()
        for state in _ORDER:
            if footer:
                footer.append(" · ", style="dim")
            label = "waiting" if state is State.CREATED else state.value
            footer.append(f"{label} {counts[state]}", style=_STYLE[state] if counts[state] else "dim")
        return Group(table, footer)


def show(
    jobs: JobManager,
    *,
    ids: Iterable[str] | None = None,
    console: Console | None = None,
    refresh_per_second: float = 8.0,
    transient: bool = False,
) -> Display:
    """Show *jobs*' jobs live in the terminal while the ``async with`` block runs.

    ::

        async with anyjob.progress.show(jobs) as display:
            ref = await jobs.submit(work)
            await jobs.wait(ref.id)
            display.print("done")

    Every job that executes while the block runs (and those executing or waiting when
    it starts) is shown, including jobs of other managers sharing the store: a bar per
    executing job with its percentage, message, elapsed time and ETA (estimated from the
    pace so far), a line per job that ends, and a footer counting the jobs seen per state.
    Not on a terminal, the news comes as plain lines (see the module's docstring).

    Args:
        jobs: An open :class:`~anyjob.JobManager`.
        ids: Show only these jobs (by default every job).
        console: The rich console to draw on; by default a new one on stdout. Pass
            ``Console(stderr=True)`` to keep stdout for the script's own output.
        refresh_per_second: How often the bars are redrawn (a terminal only).
        transient: Erase the bars when the block ends (the lines printed stay).

    Returns:
        A :class:`Display`, to use with ``async with``.

    Raises:
        TypeError, ValueError: An invalid argument.
        ManagerClosedError: (on entering) *jobs* is not open.
    """
    return Display(jobs, ids=ids, console=console, refresh_per_second=refresh_per_second, transient=transient)


def summary_table(infos: Iterable[JobInfo], *, title: str | None = "Summary") -> Table:
    """A rich table of *infos*: name, state, duration, attempts, progress and result or error.

    Print it with ``display.print(summary_table(await jobs.list()))`` or any rich console.
    """
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("state")
    table.add_column("duration", justify="right")
    table.add_column("attempts", justify="right")
    table.add_column("progress", justify="right")
    table.add_column("result or error", overflow="fold")
    for info in infos:
        if info.error_type is not None:
            outcome = Text(f"{info.error_type}: {info.error}", style="red")
        else:
            outcome = Text("-" if info.result is None else repr(info.result))
        table.add_row(
            info.name,
            Text(info.state.value, style=_STYLE[info.state]),
            "-" if info.duration is None else f"{info.duration:.3f} s",
            str(info.attempts),
            f"{info.progress:.0%}",
            outcome,
        )
    return table
