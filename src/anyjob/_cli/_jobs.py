"""``anyjob jobs list|show|stats|cancel|retry|delete|watch``: the jobs in a store.

Each command opens a :class:`~anyjob.JobManager` over the store only to ask or act through
it. It registers and submits nothing, so it never starts, takes over or cancels another
process's jobs: leaving it cancels only jobs of its own, and it has none (a retried job
is the exception: with ``--register`` it runs here).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Final

import anyio

from anyjob import progress
from anyjob._cli._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    closing,
    import_function,
    open_store,
    parse_labels,
    print_json,
    store_url,
)
from anyjob._cli._interrupt import Interrupts
from anyjob._cli._output import info_table, list_table, stats_table, stderr, stdout
from anyjob._events import EventStream
from anyjob._exceptions import JobError, JobNotFoundError
from anyjob._manager import JobManager
from anyjob._records import JobEvent, JobInfo
from anyjob._state import State
from anyjob.instrumentation import set_hooks

__all__ = ["run_jobs_command"]


def _created(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{option} is an ISO 8601 time (2026-12-03T14:00:00+00:00), got {text!r}"
        raise CliError(msg) from None
    return at if at.tzinfo is not None else at.astimezone()  # a local time, as a person means it


async def _list(jobs: JobManager, args: argparse.Namespace) -> int:
    states = [State(value) for value in args.state] if args.state else None
    infos = await jobs.list(
        state=states,
        name=args.name,
        labels=parse_labels(args.label),
        created_after=_created(args.created_after, "--created-after"),
        created_before=_created(args.created_before, "--created-before"),
        limit=args.limit,
        offset=args.offset,
    )
    next_offset = args.offset + len(infos) if len(infos) == args.limit else None
    if args.json:
        print_json({"jobs": [info.to_dict() for info in infos], "next_offset": next_offset})
        return EXIT_OK
    console = stdout()
    if not infos:
        console.print("no jobs")
        return EXIT_OK
    console.print(list_table(infos))
    if next_offset is not None:
        console.print(f"[dim]more: --offset {next_offset}[/]")
    return EXIT_OK


async def _show(jobs: JobManager, args: argparse.Namespace) -> int:
    info = await jobs.get(args.id)
    if info is None:
        msg = f"no job with id {args.id!r}"
        raise JobNotFoundError(msg, job_id=args.id)
    if args.json:
        print_json(info.to_dict())
    else:
        stdout().print(info_table(info))
    return EXIT_OK


async def _stats(jobs: JobManager, args: argparse.Namespace) -> int:
    stats = await jobs.stats(name=args.name, labels=parse_labels(args.label))
    if args.json:
        print_json(stats.to_dict())
    else:
        stdout().print(stats_table(stats))
    return EXIT_OK


async def _cancel(jobs: JobManager, args: argparse.Namespace) -> int:
    canceled = await jobs.cancel(args.id)
    info = await jobs.get(args.id)
    if args.json:
        print_json({"canceled": canceled, "job": None if info is None else info.to_dict()})
    elif canceled and info is not None and not info.state.is_done:
        # Another process runs it: it ends there, at its next checkpoint.
        stdout().print(f"job {args.id}: cancel requested (it is {info.state.value})")
    elif canceled:
        stdout().print(f"job {args.id} is canceled")
    if not canceled:
        state = "gone" if info is None else info.state.value
        sys.stderr.write(f"anyjob: error: job {args.id} was not canceled: it is {state} already\n")
        return EXIT_ERROR
    return EXIT_OK


async def _delete(jobs: JobManager, args: argparse.Namespace) -> int:
    await jobs.delete(args.id)
    if args.json:
        print_json({"deleted": args.id})
    else:
        stdout().print(f"job {args.id} deleted")
    return EXIT_OK


async def _retry(jobs: JobManager, args: argparse.Namespace) -> int:
    """Queue a failed or canceled job again.

    An external job waits for its reporter again. Any other job runs here, under this
    command's manager, so its function must be known: ``--register MODULE:FUNCTION``
    registers it under its name (as the application that submitted it did), and the
    command shows the job's progress until it ends.
    """
    for target in args.register or ():
        jobs.register(import_function(target))
    if not args.register:
        try:
            ref = await jobs.retry(args.id)
        except JobError as exc:
            if type(exc) is not JobError:  # not found, wrong state: as they are
                raise
            msg = f"{exc} (here: anyjob jobs retry ID --register MODULE:FUNCTION runs it in this process)"
            raise CliError(msg) from None
        info = await jobs.get(ref.id)
        interrupted = False
    else:
        console = stderr()
        async with (
            progress.show(jobs, ids=[args.id], console=console),
            Interrupts(lambda: _cancel_quietly(jobs, args.id), console) as interrupts,
        ):
            ref = await jobs.retry(args.id)
            info = await jobs.wait(ref.id)
        interrupted = interrupts.interrupted
    if args.json:
        print_json(None if info is None else info.to_dict())
    else:
        stdout().print(f"job {ref.id} retried: it is {'gone' if info is None else info.state.value}")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ERROR if info is not None and info.state in {State.FAILED, State.CANCELED} else EXIT_OK


async def _cancel_quietly(jobs: JobManager, job_id: str) -> None:
    await jobs.cancel(job_id)


async def _watch(jobs: JobManager, args: argparse.Namespace) -> int:
    """Follow the store's jobs live (every process's) until Ctrl-C, or until none is active."""
    ids: list[str] | None = args.ids or None
    console = stderr() if args.json else stdout()
    scope = anyio.CancelScope()

    async def graceful() -> None:
        scope.cancel()

    interrupts = Interrupts(graceful, console, "stopping")
    events = jobs.events()  # before the first look: nothing falls in between
    try:
        with scope:
            async with interrupts:
                if args.json:
                    await _print_events(jobs, ids, events, until_idle=args.until_idle)
                else:
                    async with progress.show(jobs, ids=ids, console=console):
                        if args.until_idle:
                            await _until_idle(jobs, ids, events)
                        else:
                            await anyio.sleep_forever()
    finally:
        events.close()
    return EXIT_INTERRUPTED if interrupts.interrupted else EXIT_OK


async def _active(jobs: JobManager, ids: list[str] | None) -> bool:
    if ids is None:
        return (await jobs.stats()).active > 0
    for job_id in ids:
        state = await jobs.status(job_id)
        if state is not None and not state.is_done:
            return True
    return False


async def _current(jobs: JobManager, ids: list[str] | None) -> list[JobInfo]:
    """The jobs *ids* as they are now, or else all those not done yet, oldest first."""
    if ids is None:
        infos = await jobs.list(state=(State.CREATED, State.RUNNING, State.CANCELING), limit=1000)
        return infos[::-1]
    return [info for job_id in ids if (info := await jobs.get(job_id)) is not None]


class _Idle:
    """Whether nothing is left to do: every job seen open has been seen ending, and the store agrees.

    The store alone is not enough: it may be ahead of the events still to come (a job that
    ended there, whose events are on their way), and those must be shown first.
    """

    def __init__(self, jobs: JobManager, ids: list[str] | None, current: list[JobInfo]) -> None:
        self._jobs = jobs
        self._ids = ids
        self._open = {info.id for info in current if not info.state.is_done}

    def saw(self, event: JobEvent) -> None:
        if event.state.is_done:
            self._open.discard(event.job_id)
        else:
            self._open.add(event.job_id)

    async def now(self) -> bool:
        return not self._open and not await _active(self._jobs, self._ids)


async def _until_idle(jobs: JobManager, ids: list[str] | None, events: EventStream) -> None:
    idle = _Idle(jobs, ids, await _current(jobs, ids))
    if await idle.now():
        return
    async for event in events:
        if ids is None or event.job_id in ids:
            idle.saw(event)
            if event.state.is_done and await idle.now():
                return


async def _print_events(
    jobs: JobManager, ids: list[str] | None, events: EventStream, *, until_idle: bool
) -> None:
    """One JSON object per line: first the jobs as they are now, then each event.

    The jobs as they are now: those given by id, or else every one not done yet.

    Every line has the fields of ``JobEvent.to_dict()``; the first ones' ``at`` is the
    job's ``updated_at``.
    """
    current = await _current(jobs, ids)
    for info in current:
        now = JobEvent(info.id, info.state, info.progress, info.message, info.updated_at)
        sys.stdout.write(json.dumps(now.to_dict()) + "\n")
    sys.stdout.flush()
    idle = _Idle(jobs, ids, current)
    if until_idle and await idle.now():
        return
    async for event in events:
        if ids is not None and event.job_id not in ids:
            continue
        sys.stdout.write(json.dumps(event.to_dict()) + "\n")
        sys.stdout.flush()
        idle.saw(event)
        if until_idle and event.state.is_done and await idle.now():
            return


_COMMANDS: Final = {
    "list": _list,
    "show": _show,
    "stats": _stats,
    "cancel": _cancel,
    "retry": _retry,
    "delete": _delete,
    "watch": _watch,
}


async def run_jobs_command(args: argparse.Namespace) -> int:
    """Run ``anyjob jobs ACTION`` for parsed *args*; its exit status."""
    set_hooks([])  # the command prints what it has to say; structlog output would interleave
    with closing(open_store(store_url(args), must_exist=True)) as store:
        async with JobManager(store=store, shutdown_timeout=5.0) as jobs:
            return await _COMMANDS[args.action](jobs, args)
