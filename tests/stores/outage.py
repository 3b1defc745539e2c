"""Taking a database away from a store, for real (import as ``tests.stores.outage``).

* :class:`PostgresOutage`: a login role of its own for one test. ``kill()`` terminates its
  connections (``pg_terminate_backend``, from a second connection); ``away()`` also
  refuses its new ones (``CONNECTION LIMIT 0``) until ``back()``. Nothing else using the
  server is touched.
* :class:`SQLiteLock`: another process holds the file write-locked (``BEGIN EXCLUSIVE``)
  until ``release()``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import uuid
from typing import Any

from anyjob.instrumentation import HookEvent
from conftest import POSTGRES_DSN

UNAVAILABLE = "anyjob.store_unavailable"
AVAILABLE = "anyjob.store_available"


class StoreEvents:
    """A hook keeping the store's availability events (``set_hooks([events])``)."""

    def __init__(self) -> None:
        self.seen: list[HookEvent] = []

    def __call__(self, event: HookEvent) -> None:
        if event.name in {UNAVAILABLE, AVAILABLE}:
            self.seen.append(event)

    @property
    def names(self) -> list[str]:
        return [event.name for event in self.seen]


class PostgresOutage:
    """A role whose connections can be cut and refused (see the module's docstring)."""

    def __init__(self) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        self.role = f"anyjob_fault_{uuid.uuid4().hex[:12]}"
        self.dsn = make_conninfo(POSTGRES_DSN, user=self.role)
        dbname = conninfo_to_dict(POSTGRES_DSN).get("dbname", "postgres")
        self._admin: Any = psycopg.connect(POSTGRES_DSN, autocommit=True)
        self._admin.execute(f'CREATE ROLE "{self.role}" LOGIN')
        self._admin.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO "{self.role}"')

    def kill(self) -> int:
        """Terminate every connection of the role now; how many there were."""
        rows = self._admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (self.role,)
        ).fetchall()
        return len(rows)

    def away(self) -> int:
        """Refuse the role's new connections, then terminate its open ones."""
        self._admin.execute(f'ALTER ROLE "{self.role}" CONNECTION LIMIT 0')
        return self.kill()

    def back(self) -> None:
        """Accept the role's connections again."""
        self._admin.execute(f'ALTER ROLE "{self.role}" CONNECTION LIMIT -1')

    def close(self) -> None:
        """Drop what the role made (its schemas) and the role."""
        self.back()
        self.kill()
        self._admin.execute(f'DROP OWNED BY "{self.role}" CASCADE')
        self._admin.execute(f'DROP ROLE IF EXISTS "{self.role}"')
        self._admin.close()


_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class SQLiteLock:
    """Another process holding *path* write-locked from ``__init__`` until :meth:`release`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(pathlib.Path(path))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line == "locked\n", f"the holder said {line!r}"

    def release(self) -> None:
        process = self._process
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.write("\n")
            process.stdin.flush()
            process.wait(timeout=30)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
