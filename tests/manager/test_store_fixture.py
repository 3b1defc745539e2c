"""The harness the manager tests stand on: ``make_store`` and the ``postgres`` marker (tests/conftest.py)."""

from __future__ import annotations

import pathlib

import pytest
from tests.manager.support import MakeStore, ok

from anyjob import JobManager, State
from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore
from conftest import DelegatingStore

KINDS = {"memory": MemoryStore, "protocol": DelegatingStore, "sqlite": SQLiteStore, "postgres": PostgresStore}


@pytest.mark.anyio
@pytest.mark.usefixtures("silent")
async def test_make_store_gives_a_fresh_empty_store_per_call(make_store: MakeStore, store_kind: str) -> None:
    first, second = make_store(), make_store()
    assert type(first) is KINDS[store_kind]
    assert first is not second
    async with JobManager(first) as a, JobManager(second) as b:
        ref = await a.submit(ok, 1)
        assert (await a.wait(ref.id)).state is State.SUCCEEDED  # type: ignore[union-attr]
        assert await b.get(ref.id) is None  # two calls, two stores: nothing shared
        assert (await b.stats()).total == 0


_NEEDS_POSTGRES = """
import pytest

@pytest.mark.postgres
def test_needs_postgres():
    pass
"""

# hypothesis's plugin spends seconds in the inner run's terminal summary: the inner run needs none of it.
_INNER_OPTIONS = ("--strict-markers", "-p", "no:hypothesispytest")


@pytest.fixture
def suite_without_postgres(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytest project with this suite's conftest and one ``postgres`` test, and no server to reach."""
    pytester.makeconftest((pathlib.Path(__file__).parents[1] / "conftest.py").read_text())
    pytester.makepyfile(test_needs_postgres=_NEEDS_POSTGRES)
    monkeypatch.setenv("ANYJOB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:1/test")  # nobody listens
    return pytester


def test_postgres_tests_skip_with_the_reason_when_the_server_is_down(
    suite_without_postgres: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite_without_postgres.runpytest_inprocess("-rs", *_INNER_OPTIONS)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no PostgreSQL at postgresql://postgres@127.0.0.1:1/test*"])


def test_postgres_tests_fail_in_ci_when_the_server_is_down(
    suite_without_postgres: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite_without_postgres.runpytest_inprocess(*_INNER_OPTIONS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true, so PostgreSQL tests must run, not skip*"])
    assert result.ret != 0
