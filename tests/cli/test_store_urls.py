"""Store URLs: what each names, and one clear line (no traceback) for a bad or unreachable one."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.support import cli, run_cli

from anyjob._cli._common import CliError, open_store
from anyjob.stores import PostgresStore, SQLiteStore


def test_sqlite_urls_are_spelled_as_sqlalchemy_does(tmp_path: Path) -> None:
    relative = open_store("sqlite:///jobs.db", must_exist=False)
    assert isinstance(relative, SQLiteStore)
    assert relative.path == "jobs.db"
    absolute = open_store(f"sqlite:///{tmp_path}/jobs.db", must_exist=False)
    assert isinstance(absolute, SQLiteStore)
    assert Path(absolute.path) == tmp_path / "jobs.db"


def test_postgres_urls_go_to_libpq_with_an_optional_schema() -> None:
    store = open_store("postgresql://postgres@127.0.0.1:5432/test?schema=cli_jobs", must_exist=False)
    assert isinstance(store, PostgresStore)
    assert "schema='cli_jobs'" in repr(store)
    assert isinstance(open_store("postgres://postgres@127.0.0.1/test", must_exist=False), PostgresStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/jobs", "unknown store URL scheme 'mysql'"),
        ("jobs.db", "not a store URL: 'jobs.db'"),
        ("sqlite://jobs.db", "sqlite:///PATH (three slashes, then the file)"),
        ("sqlite:///", "sqlite:///PATH (three slashes, then the file)"),
        ("", "no store given: pass --store URL"),
    ],
)
def test_bad_urls_are_refused_saying_what_a_url_looks_like(url: str, message: str) -> None:
    with pytest.raises(CliError) as caught:
        open_store(url, must_exist=False)
    assert message in str(caught.value)


def test_inspecting_a_missing_sqlite_file_does_not_create_one(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    status, out, err = cli(capsys, "jobs", "list", "--store", f"sqlite:///{missing}")
    assert (status, out) == (1, "")
    assert err == f"anyjob: error: no SQLite database at {str(missing)!r} (from 'sqlite:///{missing}')\n"
    assert not missing.exists()


def test_a_file_that_is_not_a_database(capsys, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 100)
    status, _, err = cli(capsys, "jobs", "stats", "--store", f"sqlite:///{junk}")
    assert status == 1
    assert err.startswith("anyjob: error: the store cannot be used: ")
    assert "not a database" in err
    assert "Traceback" not in err


def test_an_unreachable_database_is_one_clear_error_from_the_shell() -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    result = run_cli("jobs", "list", "--store", "postgresql://postgres@127.0.0.1:1/jobs")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("anyjob: error: the store cannot be used: ")
    assert "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_url_from_the_shell(tmp_path: Path) -> None:
    result = run_cli("jobs", "list", "--store", "redis://localhost")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "unknown store URL scheme 'redis'" in result.stderr


@pytest.mark.postgres
def test_a_postgres_store_by_url_with_its_schema(capsys) -> None:
    import json
    import uuid

    import anyio
    from tests.conftest import POSTGRES_DSN, drop_postgres_schemas

    import anyjob

    schema = f"anyjob_cli_{uuid.uuid4().hex[:12]}"

    async def fill() -> str:
        store = PostgresStore(POSTGRES_DSN, schema=schema)
        try:
            async with anyjob.JobManager(store) as jobs:
                ref = await jobs.create("export", {"table": "users"}, message="queued")
                return ref.id
        finally:
            store.close()

    try:
        job_id = anyio.run(fill)
        separator = "&" if "?" in POSTGRES_DSN else "?"
        url = f"{POSTGRES_DSN}{separator}schema={schema}"
        status, out, err = cli(capsys, "jobs", "list", "--store", url, "--json")
        assert status == 0, err
        assert [job["id"] for job in json.loads(out)["jobs"]] == [job_id]
        assert cli(capsys, "jobs", "cancel", job_id, "--store", url)[0] == 0
        status, out, _ = cli(capsys, "jobs", "show", job_id, "--store", url, "--json")
        assert json.loads(out)["state"] == "canceled"
    finally:
        drop_postgres_schemas([schema])
