"""What every command shares: store URLs, imports of ``MODULE:FUNCTION``, JSON output, exit statuses."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import sys
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio

from anyjob._exceptions import JobError, StoreError
from anyjob.stores import PostgresStore, SQLiteStore, Store

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "CliError",
    "closing",
    "execute",
    "import_function",
    "open_store",
    "parse_json",
    "parse_labels",
    "print_json",
]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130

#: The environment variable ``--store`` defaults to.
STORE_ENV: Final = "ANYJOB_STORE"
_URL_HELP: Final = "sqlite:///path/to/jobs.db or postgresql://user@host/dbname"


class CliError(Exception):
    """A problem with what the command line was given: printed as one line, exit status 1."""


def open_store(url: str | None, *, must_exist: bool) -> Store:
    """The store a URL names: ``sqlite:///PATH`` or ``postgresql://...``.

    ``sqlite:///jobs.db`` is ``jobs.db`` in the working directory and
    ``sqlite:////var/lib/jobs.db`` an absolute path, as SQLAlchemy spells them. A
    ``schema=NAME`` query parameter of a PostgreSQL URL picks the schema (default
    ``anyjob``); the rest of the URL goes to libpq as it is.

    Args:
        url: The URL (``None``: not given).
        must_exist: An SQLite file must exist already (commands that only inspect it
            would otherwise leave an empty database behind a typo).

    Raises:
        CliError: No URL, an unknown scheme, or a missing SQLite file.
    """
    if not url:
        msg = f"no store given: pass --store URL ({_URL_HELP}) or set {STORE_ENV}"
        raise CliError(msg)
    scheme, sep, rest = url.partition("://")
    if not sep:
        msg = f"not a store URL: {url!r} (expected {_URL_HELP})"
        raise CliError(msg)
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:  # noqa: PLR2004 - "/" and one character at least
            msg = f"an SQLite store URL is sqlite:///PATH (three slashes, then the file), not {url!r}"
            raise CliError(msg)
        path = Path(rest[1:])
        if must_exist and not path.is_file():
            msg = f"no SQLite database at {str(path)!r} (from {url!r})"
            raise CliError(msg)
        return SQLiteStore(path)
    if scheme in {"postgresql", "postgres"}:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
        try:
            return PostgresStore(dsn, schema=schemas[-1]) if schemas else PostgresStore(dsn)
        except (TypeError, ValueError) as exc:
            msg = f"invalid PostgreSQL store URL {url!r}: {exc}"
            raise CliError(msg) from None
    msg = f"unknown store URL scheme {scheme!r} in {url!r} (expected {_URL_HELP})"
    raise CliError(msg)


@contextlib.contextmanager
def closing(store: Store) -> Generator[Store]:
    """*store*, its database connections closed on the way out (a manager does not close them)."""
    try:
        yield store
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def store_url(args: argparse.Namespace) -> str | None:
    """``--store``, or the ``ANYJOB_STORE`` environment variable."""
    given: str | None = getattr(args, "store", None)
    return given or os.environ.get(STORE_ENV) or None


def import_function(target: str) -> Callable[..., Awaitable[Any]]:
    """Import ``MODULE:FUNCTION`` (a dotted attribute path after the colon), as ``python -m`` finds modules.

    Raises:
        CliError: A malformed target, a module or attribute that is not there, or
            something that is not an ``async def`` function.
    """
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        msg = f"expected MODULE:FUNCTION (for example mypackage.tasks:resize), got {target!r}"
        raise CliError(msg)
    if "" not in sys.path and os.getcwd() not in sys.path:  # noqa: PTH109 - what python -m puts first
        sys.path.insert(0, os.getcwd())  # noqa: PTH109
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"cannot import {module_name!r}: {exc}"
        raise CliError(msg) from None
    except Exception as exc:  # noqa: BLE001 - the module's own error, told in one line
        msg = f"importing {module_name!r} raised {type(exc).__qualname__}: {exc}"
        raise CliError(msg) from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            msg = f"{module_name!r} has no {attribute!r} (looked for {part!r})"
            raise CliError(msg) from None
    if not callable(found) or not inspect.iscoroutinefunction(found):
        msg = f"{target} is not an async def function: a job is `async def fn(ctx)`"
        raise CliError(msg)
    return found  # type: ignore[no-any-return]


def parse_json(text: str, what: str) -> Any:
    """*text* as JSON, or a :class:`CliError` naming *what* it was."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{what} is not valid JSON ({exc}): {text!r}"
        raise CliError(msg) from None


def parse_labels(pairs: list[str] | None) -> dict[str, str] | None:
    """``KEY=VALUE`` (or ``KEY:VALUE``) strings as a dict; ``None`` when none were given."""
    if not pairs:
        return None
    labels: dict[str, str] = {}
    for pair in pairs:
        sep = "=" if "=" in pair else ":"
        key, found, value = pair.partition(sep)
        if not found or not key:
            msg = f"a label is KEY=VALUE, got {pair!r}"
            raise CliError(msg)
        labels[key] = value
    return labels


def print_json(value: Any) -> None:
    """*value* as indented JSON on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _error(message: str) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"anyjob: error: {message}\n")
    sys.stderr.flush()
    return EXIT_ERROR


def _leaf(exc: BaseException) -> BaseException:
    """The one exception an exception group stands for (our task groups wrap what they raise)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        exc = exc.exceptions[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return exc  # pyright: ignore[reportUnknownVariableType]


def execute(command: Callable[[], Awaitable[int]], backend: str) -> int:
    """Run *command* on *backend*; its errors as one line on stderr and the exit status.

    A store that cannot be reached, a job error (an unknown id, a wrong state) and a
    :class:`CliError` print ``anyjob: error: ...`` and give 1; Ctrl-C not handled by
    the command gives 130. Anything else is a bug and keeps its traceback.
    """
    try:
        try:
            return anyio.run(command, backend=backend)
        except BaseExceptionGroup as group:
            raise _leaf(group) from None
    except KeyboardInterrupt:
        sys.stderr.write("\nanyjob: interrupted\n")
        return EXIT_INTERRUPTED
    except StoreError as exc:
        return _error(f"the store cannot be used: {exc}")
    except (CliError, JobError) as exc:
        return _error(str(exc))
    except (TypeError, ValueError) as exc:  # what the library refused at its boundary
        return _error(str(exc))
