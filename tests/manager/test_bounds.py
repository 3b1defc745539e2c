"""Hostile values at the boundary of ``JobManager.submit``, over every store (issue 8).

Generated values (hypothesis) are thrown at ``submit``'s arguments over a MemoryStore, an
SQLiteStore (one file per test) and a PostgresStore (one schema per test, dropped after), on
asyncio and trio. This module also holds what the other ``test_bounds_*`` modules share: the
``new_store`` fixture, the hostile-value strategies, the job functions and the oracle helpers.
What a job returns, raises and reports is in ``test_bounds_jobs.py``; lookups by id and query
filters are in ``test_bounds_queries.py``.

``anyjob._limits`` and ``anyjob._records.check_json_safe`` are the oracle: a value they refuse
must be refused at the call with the same ``TypeError``/``ValueError`` and nothing stored; a
value they take must be taken. Whatever happens, no driver error (``sqlite3``, ``psycopg``)
and no ``OverflowError``/``RecursionError``/``UnicodeEncodeError`` reaches the caller; a job
producing bad data ends FAILED saying what could not be stored while a healthy job beside it
SUCCEEDS; afterwards ``list()`` and ``stats()`` answer and a new job still succeeds.

Each example runs in its own ``anyio.run`` with a new store object (same file or schema), so
examples do not depend on each other and hypothesis can shrink a failure.
"""

from __future__ import annotations

import math
import pathlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import anyjob
from anyjob import Context, JobError, JobManager, State
from anyjob._limits import (
    check_labels,
    check_name,
    check_new_id,
    check_page,
    check_priority,
    check_progress,
    check_start,
)
from anyjob._records import check_json_safe
from anyjob.stores import MemoryStore, PostgresStore, SQLiteStore
from conftest import POSTGRES_DSN, drop_postgres_schemas

pytestmark = pytest.mark.usefixtures("silent")

#: Generous: a job over PostgreSQL on a loaded CI machine still ends well within this.
WAIT = 30.0

#: What may reach a caller for a refused value.
ALLOWED = (TypeError, ValueError, JobError)

#: Never may these reach a caller (the driver's errors are matched by module name).
FORBIDDEN = (OverflowError, RecursionError, UnicodeError, MemoryError)


def is_driver_error(error: BaseException) -> bool:
    module = type(error).__module__
    return module.startswith(("sqlite3", "psycopg")) or isinstance(error, FORBIDDEN)


# -- stores ------------------------------------------------------------------------------------

StoreFactory = Callable[[], Any]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[StoreFactory]:
    """A factory of store objects over one database per test: a new object per example."""
    kind: str = request.param
    made: list[Any] = []
    schema = f"anyjob_bounds_{uuid.uuid4().hex[:12]}"

    def make() -> Any:
        store: Any
        if kind == "memory":
            store = MemoryStore()
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / "jobs.db", poll_interval=0.02)
        else:
            store = PostgresStore(POSTGRES_DSN, schema=schema, poll_interval=0.02)
        made.append(store)
        return store

    yield make
    for store in made:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    if kind == "postgres":
        drop_postgres_schemas([schema])


def run(backend: tuple[str, dict[str, object]], fn: Callable[[], Awaitable[None]]) -> None:
    name, options = backend
    anyio.run(fn, backend=name, backend_options=options)


SETTINGS = settings(
    max_examples=6,  # generated, beside the explicit examples: the cases issue 8 names
    deadline=None,
    derandomize=True,  # the same examples every run: a CI failure reproduces
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- hostile values ------------------------------------------------------------------------------


class Special:
    """A value built only inside the test (hypothesis shows its name, not a 900-deep repr)."""

    def __init__(self, name: str, build: Callable[[], Any]) -> None:
        self.name = name
        self.build = build

    def __repr__(self) -> str:
        return self.name


def _cycle() -> Any:
    value: list[Any] = [1]
    value.append(value)
    return value


def _dict_cycle() -> Any:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


SPECIALS = [
    Special("cycle", _cycle),
    Special("dict_cycle", _dict_cycle),
    Special("deep(64)", lambda: _deep(64)),
    Special("deep(65)", lambda: _deep(65)),
    Special("deep(900)", lambda: _deep(900)),
    Special("10**5000", lambda: 10**5000),
    Special("-(10**5000)", lambda: -(10**5000)),
    Special("'x' * 100_000", lambda: "x" * 100_000),
]


def special(name: str) -> Special:
    """The :data:`SPECIALS` entry called *name*."""
    return next(item for item in SPECIALS if item.name == name)


def materialize(value: Any) -> Any:
    """*value* with every :class:`Special` built (containers copied, tuples kept)."""
    if isinstance(value, Special):
        return value.build()
    if isinstance(value, list):
        return [materialize(item) for item in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, tuple):
        return tuple(materialize(item) for item in value)  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, dict):
        return {materialize(k): materialize(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    return value


NASTY_CHARS = ["\x00", "\udc80", "\ud800", "\udfff", "é", "\U0001f600", "\n", "'", '"', "\\", "%", "?", "$"]

hostile_text = st.one_of(
    st.text(st.one_of(st.characters(), st.sampled_from(NASTY_CHARS)), max_size=12),
    st.sampled_from(["", "x" * 128, "x" * 129, "x" * 255, "x" * 256, "x" * 1024, "x" * 1025, "x" * 4097]),
    st.sampled_from(["x" * 8192, "é" * 300]),
)

hostile_int = st.one_of(
    st.integers(),
    st.sampled_from(
        [0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**100]
    ),
)

other_junk = st.sampled_from([b"bytes", 1j, Decimal("1.5"), {1, 2}, frozenset[int](), object, type, Ellipsis])

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    hostile_int,
    st.floats(),
    hostile_text,
    other_junk,
    st.sampled_from(SPECIALS),
)

json_keys = st.one_of(hostile_text, st.integers(-2, 2), st.none(), st.tuples(st.integers(0, 1)))

hostile_json = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(json_keys, children, max_size=3),
    ),
    max_leaves=8,
)

anything = st.one_of(hostile_text, hostile_int, st.floats(), st.none(), st.booleans(), other_junk)

hostile_labels = st.one_of(
    st.none(),
    st.dictionaries(hostile_text, hostile_text, max_size=3),
    st.dictionaries(st.one_of(hostile_text, st.integers()), anything, max_size=2),
    st.integers(0, 70).map(lambda n: {f"k{i}": "v" for i in range(n)}),
    st.lists(st.tuples(st.text(max_size=2), st.text(max_size=2)), max_size=2),
    anything,
)

zones = st.one_of(
    st.none(),
    st.just(UTC),
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)).map(
        timezone
    ),
)

hostile_datetime = st.one_of(
    st.datetimes(timezones=zones),
    st.sampled_from([datetime.max, datetime.min]).flatmap(  # noqa: DTZ901 - given a zone below
        lambda value: zones.map(lambda zone: value.replace(tzinfo=zone))
    ),
)

hostile_duration = st.one_of(
    st.floats(),
    hostile_int,
    st.sampled_from(
        [1e12, 3.2e9, 3.1e9, 10**400, -(10**400), timedelta.max, timedelta.min, timedelta(days=36600)]
    ),
    st.timedeltas(),
    st.booleans(),
    hostile_text,
)

hostile_id = st.one_of(hostile_text, anything)


# -- job functions -------------------------------------------------------------------------------


async def healthy(ctx: Context) -> str:
    return "healthy"


async def returns_params(ctx: Context) -> Any:
    return ctx.params


async def returns_special(ctx: Context) -> Any:
    """Returns the value registered under the job's id (not JSON: a value no params could carry)."""
    return RESULTS.pop(ctx.id)


#: Values for returns_special and raises_special, by job id.
RESULTS: dict[str, Any] = {}


class UnprintableError(Exception):
    def __str__(self) -> str:
        msg = "this error cannot be shown"
        raise RuntimeError(msg)


async def raises_special(ctx: Context) -> None:
    raise RESULTS.pop(ctx.id)


def new_id() -> str:
    return uuid.uuid4().hex


async def assert_still_working(jobs: JobManager) -> None:
    """list() and stats() answer, and a healthy job submitted now succeeds."""
    assert isinstance(await jobs.list(), list)
    assert isinstance(await jobs.stats(), anyjob.JobStatistics)
    ref = await jobs.submit(healthy)
    info = await jobs.wait(ref.id, timeout=WAIT)
    assert info is not None
    assert info.state is State.SUCCEEDED, info


async def expect_refused(call: Callable[[], Awaitable[object]], oracle: BaseException) -> BaseException:
    """*call* raises the same kind of error as the oracle did, and nothing else."""
    error: BaseException | None = None
    try:
        await call()
    except Exception as raised:  # what it is gets checked below
        error = raised
    if error is None:
        pytest.fail(f"expected {type(oracle).__name__} ({oracle}), but the call was accepted")
    if not isinstance(error, ALLOWED) or is_driver_error(error):
        pytest.fail(f"expected {type(oracle).__name__} ({oracle}), got {type(error).__module__}.{error!r}")
    assert isinstance(error, type(oracle)), (error, oracle)
    return error


def oracle_error(check: Callable[[], object]) -> BaseException | None:
    """What the limits say about a value: the error they raise, or None when it is fine."""
    try:
        check()
    except (TypeError, ValueError) as error:
        return error
    return None


# -- submit ------------------------------------------------------------------------------------

SUBMIT_ARGUMENTS = st.one_of(
    st.tuples(st.just("params"), hostile_json),
    st.tuples(st.just("name"), st.one_of(hostile_text, anything)),
    st.tuples(st.just("labels"), hostile_labels),
    st.tuples(st.just("id"), hostile_id),
    st.tuples(st.just("priority"), st.one_of(hostile_int, anything)),
    st.tuples(st.just("delay"), hostile_duration),
    st.tuples(st.just("at"), st.one_of(hostile_datetime, anything)),
)


def submit_oracle(argument: str, value: Any) -> BaseException | None:  # noqa: PLR0911 - one per argument
    if argument == "params":
        return oracle_error(lambda: check_json_safe(value, "params"))
    if argument == "name":
        return None if value is None else oracle_error(lambda: check_name(value))
    if argument == "labels":
        return oracle_error(lambda: check_labels(value))
    if argument == "id":
        return None if value is None else oracle_error(lambda: check_new_id(value))
    if argument == "priority":
        return oracle_error(lambda: check_priority(value))
    if argument == "delay":
        return None if value is None else oracle_error(lambda: check_start(value, None, 0.0))
    now = datetime.now(UTC).timestamp()
    return None if value is None else oracle_error(lambda: check_start(None, value, now))


@SETTINGS
@given(case=SUBMIT_ARGUMENTS)
@example(case=("id", "x" * 8192))
@example(case=("id", "a\x00b"))
@example(case=("id", "\udc80"))
@example(case=("id", ""))
@example(case=("priority", 2**31))
@example(case=("priority", 2**100))
@example(case=("params", special("cycle")))
@example(case=("params", special("deep(900)")))
@example(case=("params", special("10**5000")))
@example(case=("params", {"k": "\x00"}))
@example(case=("params", ["\udc80"]))
@example(case=("delay", 1e12))
@example(case=("delay", timedelta.max))
@example(case=("at", datetime.max.replace(tzinfo=UTC)))
@example(case=("name", ""))
@example(case=("name", "a\x00"))
@example(case=("labels", {"k": "\x00"}))
@example(case=("labels", {"\udc80": "v"}))
def test_submit_refuses_what_the_limits_refuse_and_stores_nothing(
    case: tuple[str, Any], new_store: StoreFactory, anyio_backend: tuple[str, dict[str, object]]
) -> None:
    argument, spec = case
    value = materialize(spec)
    refused = submit_oracle(argument, value)

    async def main() -> None:
        async with JobManager(new_store()) as jobs:
            before = (await jobs.stats()).total
            job_id = new_id()
            kwargs: dict[str, Any] = {argument: value}
            if argument != "id":
                kwargs["id"] = job_id
            fn = returns_params if argument == "params" else healthy
            if refused is not None:
                await expect_refused(lambda: jobs.submit(fn, **kwargs), refused)
                assert (await jobs.stats()).total == before
                if argument != "id":
                    assert await jobs.get(job_id) is None
            else:
                ref = await jobs.submit(fn, **kwargs)
                if argument in {"delay", "at"} and (await jobs.status(ref.id)) is State.CREATED:
                    await jobs.cancel(ref.id)  # scheduled far ahead: not worth waiting for
                else:
                    info = await jobs.wait(ref.id, timeout=WAIT)
                    assert info is not None
                    assert info.state is State.SUCCEEDED, info
            await assert_still_working(jobs)

    run(anyio_backend, main)


def test_the_oracle_refuses_what_broke_the_stores() -> None:
    """The values named in issue 8 are among those the limits refuse (so the test_bounds* tests see them)."""
    assert oracle_error(lambda: check_new_id("x" * 8192)) is not None
    assert oracle_error(lambda: check_new_id("a\x00b")) is not None
    assert oracle_error(lambda: check_priority(2**31)) is not None
    assert oracle_error(lambda: check_page(50, 2**63)) is not None
    assert oracle_error(lambda: check_progress(10**400)) is not None
    assert oracle_error(lambda: check_name("\udc80")) is not None
    for value in (_cycle(), _deep(900), 10**5000):
        with pytest.raises(ValueError, match="JSON-safe"):
            check_json_safe(value, "result")
    for delay in (1e12, timedelta.max):
        with pytest.raises(ValueError, match="100 years"):
            check_start(delay, None, 0.0)
    at = datetime.max.replace(tzinfo=UTC)
    assert oracle_error(lambda: check_start(None, at, 0.0)) is not None
    assert not math.isnan(check_start(None, None, 0.0))
