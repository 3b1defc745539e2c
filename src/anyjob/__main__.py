"""The command line: ``anyjob`` or ``python -m anyjob`` (see ``docs/cli.md``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default ``sys.argv[1:]``); returns the exit status.

    0 on success, 1 on a failed job or an error, 130 when interrupted.
    """
    from anyjob._cli import main as cli_main  # noqa: PLC0415 - `import anyjob` does not load the CLI

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
