"""The ``anyjob`` command line (also ``python -m anyjob``); see ``docs/cli.md``.

Exit statuses: 0 on success, 1 on a failed job or an error (usage errors included), 130
when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from anyjob._version import __version__

if TYPE_CHECKING:
    from anyjob._state import State

__all__ = ["main"]

_EPILOG = """\
store URLs: sqlite:///jobs.db (relative), sqlite:////var/lib/jobs.db (absolute),
postgresql://user@host/dbname[?schema=anyjob]; --store defaults to $ANYJOB_STORE.
exit status: 0 success, 1 a failed job or an error, 130 interrupted."""


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with 1, as every other error of the command line."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        msg = f"not a number of seconds: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="anyjob",
        description="anyjob: run, track and control jobs of anyio programs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"anyjob {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    backend = _Parser(add_help=False)
    backend.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="the async library"
    )
    output = _Parser(add_help=False)
    output.add_argument("--json", action="store_true", help="print machine-readable JSON")
    store = _Parser(add_help=False)
    store.add_argument(
        "--store", metavar="URL", help="the store: sqlite:///PATH or postgresql://... ($ANYJOB_STORE)"
    )
    listen = _Parser(add_help=False)
    listen.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    listen.add_argument("--port", type=int, default=8000, help="the port (default 8000; 0 picks a free one)")
    register = _Parser(add_help=False)
    register.add_argument(
        "--register",
        action="append",
        metavar="MODULE:FUNCTION",
        help="import and register this job function (repeatable)",
    )

    demo = commands.add_parser("demo", parents=[backend, listen], help="run a few jobs and show them live")
    demo.add_argument("--serve", action="store_true", help="also serve the dashboard (asyncio), until Ctrl-C")
    demo.add_argument("--pace", type=_seconds, default=1.0, help="run the jobs this many times slower")

    run = commands.add_parser(
        "run", parents=[backend, output, store], help="run an async function as a job, with a progress bar"
    )
    run.add_argument("target", metavar="MODULE:FUNCTION", help="async def FUNCTION(ctx) in MODULE")
    run.add_argument("--params", metavar="JSON", help="the job's params, as JSON")
    run.add_argument("--retry", type=int, metavar="N", help="attempts in all (retries N - 1 times)")
    run.add_argument("--timeout", type=_seconds, metavar="S", help="seconds per attempt")
    run.add_argument("--name", help="the job's name (default: the function's)")
    run.add_argument("--label", action="append", metavar="KEY=VALUE", help="a label (repeatable)")

    jobs = commands.add_parser("jobs", help="list, inspect and control the jobs in a store")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    common = [backend, output, store]
    listing = actions.add_parser("list", parents=common, help="jobs, newest first")
    listing.add_argument(
        "--state", action="append", choices=[s.value for s in _states()], help="only this state (repeatable)"
    )
    listing.add_argument("--name", help="only jobs with this name")
    listing.add_argument("--label", action="append", metavar="KEY=VALUE", help="only jobs with this label")
    listing.add_argument("--created-after", metavar="TIME", help="ISO 8601")
    listing.add_argument("--created-before", metavar="TIME", help="ISO 8601")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (1..1000, default 50)")
    listing.add_argument("--offset", type=int, default=0, help="skip this many first")
    actions.add_parser("show", parents=common, help="one job's details").add_argument("id")
    stats = actions.add_parser("stats", parents=common, help="counts per state and name")
    stats.add_argument("--name", help="only jobs with this name")
    stats.add_argument("--label", action="append", metavar="KEY=VALUE", help="only jobs with this label")
    actions.add_parser("cancel", parents=common, help="cancel a job (in whichever process)").add_argument(
        "id"
    )
    retry = actions.add_parser(
        "retry", parents=[*common, register], help="run a failed or canceled job again"
    )
    retry.add_argument("id")
    actions.add_parser("delete", parents=common, help="delete a finished job").add_argument("id")
    watch = actions.add_parser("watch", parents=common, help="follow the jobs live, until Ctrl-C")
    watch.add_argument("ids", nargs="*", metavar="ID", help="only these jobs")
    watch.add_argument("--until-idle", action="store_true", help="stop once no job is waiting or executing")

    commands.add_parser(
        "serve", parents=[store, listen, register], help="serve the HTTP API and dashboard (anyjob[web])"
    )
    return parser


def _states() -> list[State]:
    from anyjob._state import State  # noqa: PLC0415 - keep `anyjob --help` light

    return list(State)


def _check_backend(backend: str) -> str | None:
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        return "--backend trio needs trio: pip install trio"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default ``sys.argv[1:]``); returns the exit status."""
    args = _parser().parse_args(argv)
    problem = _check_backend(getattr(args, "backend", "asyncio"))
    if problem is None and importlib.util.find_spec("rich") is None:
        problem = "the command line draws with rich: pip install 'anyjob[cli]'"
    if problem is not None:
        sys.stderr.write(f"anyjob: error: {problem}\n")
        return 1
    from anyjob._cli._common import execute  # noqa: PLC0415 - after the checks above

    if args.command == "demo":
        from anyjob._demo import run_demo  # noqa: PLC0415

        return run_demo(args.backend, pace=args.pace, serve=(args.host, args.port) if args.serve else None)
    if args.command == "run":
        from anyjob._cli._run import run_function  # noqa: PLC0415

        return execute(lambda: run_function(args), args.backend)
    if args.command == "jobs":
        from anyjob._cli._jobs import run_jobs_command  # noqa: PLC0415

        return execute(lambda: run_jobs_command(args), args.backend)
    from anyjob._cli._serve import serve  # noqa: PLC0415

    return execute(lambda: serve(args), "asyncio")  # uvicorn runs on asyncio
