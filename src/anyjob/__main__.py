"""Command line: ``python -m anyjob demo``."""

from __future__ import annotations

import argparse
import sys

from anyjob._version import __version__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="anyjob", description="anyjob: jobs for anyio programs.")
    parser.add_argument("--version", action="version", version=f"anyjob {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a few jobs and show their progress live")
    demo.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args(argv)
    if args.command == "demo":  # pragma: no branch - the only command so far
        from anyjob._demo import run_demo  # noqa: PLC0415 - keep `anyjob --help` fast

        return run_demo(args.backend)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
