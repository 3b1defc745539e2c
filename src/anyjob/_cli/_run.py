"""``anyjob run MODULE:FUNCTION``: one coroutine function run as a job, with a live progress bar."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from anyjob import progress
from anyjob._cli._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    closing,
    import_function,
    open_store,
    parse_json,
    parse_labels,
    print_json,
    store_url,
)
from anyjob._cli._interrupt import Interrupts
from anyjob._cli._output import stderr
from anyjob._ids import new_id
from anyjob._manager import JobManager
from anyjob._records import JobInfo
from anyjob._state import State
from anyjob.instrumentation import set_hooks
from anyjob.stores import MemoryStore, Store

__all__ = ["run_function"]


def _check(args: argparse.Namespace) -> None:
    if args.retry is not None and args.retry < 1:
        msg = f"--retry is the number of attempts (1 or more), got {args.retry}"
        raise CliError(msg)
    if args.timeout is not None and not args.timeout > 0:
        msg = f"--timeout is seconds per attempt (more than 0), got {args.timeout}"
        raise CliError(msg)


async def run_function(args: argparse.Namespace) -> int:
    """Run ``args.target`` as a job; print its result (or its error) and return the exit status.

    Progress goes to stderr (stdout keeps the result, for pipes). With ``--store`` the
    job is recorded there, visible to ``anyjob jobs`` and every manager sharing it.
    """
    _check(args)
    fn = import_function(args.target)
    params = None if args.params is None else parse_json(args.params, "--params")
    labels = parse_labels(args.label)
    url = store_url(args)
    store: Store = MemoryStore() if url is None else open_store(url, must_exist=False)
    set_hooks([])  # the command reports the outcome itself
    console = stderr()
    job_id = new_id()
    with closing(store):
        async with JobManager(store=store) as jobs:

            async def graceful() -> None:
                await jobs.cancel(job_id)

            async with (
                progress.show(jobs, ids=[job_id], console=console),
                Interrupts(graceful, console) as interrupts,
            ):
                await jobs.submit(
                    fn,
                    params,
                    id=job_id,
                    name=args.name,
                    labels=labels,
                    retry=args.retry,
                    timeout=args.timeout,
                )
                info = await jobs.wait(job_id)
    assert info is not None  # noqa: S101 - our own job, just finished
    _report(info, as_json=args.json)
    if interrupts.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if info.state is State.SUCCEEDED else EXIT_ERROR


def _report(info: JobInfo, *, as_json: bool) -> None:
    if as_json:
        print_json(info.to_dict())
        return
    if info.state is State.SUCCEEDED:
        if info.result is not None:
            Console(highlight=False).print_json(data=info.result)
        return
    if info.state is State.FAILED:
        if info.traceback:
            sys.stderr.write(info.traceback.rstrip() + "\n")
        sys.stderr.write(f"anyjob: job {info.name} ({info.id}) failed: {info.error_type}: {info.error}\n")
    else:
        sys.stderr.write(f"anyjob: job {info.name} ({info.id}) was {info.state.value}\n")
