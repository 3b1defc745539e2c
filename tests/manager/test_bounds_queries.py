"""Hostile ids at the lookups and controls, hostile filters at the queries, over every store (issue 8).

``get``/``status``/``wait`` and ``cancel``/``retry``/``delete`` given any id, and ``list``/``stats``
given any filter (state, name, labels, created bounds, limit, offset), refuse what the oracle in
``test_bounds.py`` refuses with the same error and no driver error, answer the rest, and leave
the manager working. Strategies, the ``new_store`` fixture and the helpers come from
``tests.manager.test_bounds``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.manager import test_bounds as bounds
from tests.manager.test_bounds import (
    SETTINGS,
    StoreFactory,
    anything,
    assert_still_working,
    expect_refused,
    hostile_datetime,
    hostile_id,
    hostile_int,
    hostile_labels,
    hostile_text,
    oracle_error,
    run,
)

import anyjob
from anyjob import JobManager, JobNotFoundError, State
from anyjob._limits import check_created, check_id, check_labels, check_name, check_page

#: The store fixture of ``test_bounds``, bound here so pytest finds it for this module.
new_store = bounds.new_store

pytestmark = pytest.mark.usefixtures("silent")

LOOKUPS = ["get", "status", "wait"]
CONTROLS = ["cancel", "retry", "delete"]


async def call_by_id(jobs: JobManager, method: str, job_id: Any) -> object:
    if method == "wait":
        return await jobs.wait(job_id, timeout=0)
    bound: Callable[[Any], Awaitable[object]] = getattr(jobs, method)
    return await bound(job_id)


@SETTINGS
@given(method=st.sampled_from(LOOKUPS + CONTROLS), job_id=hostile_id)
@example(method="get", job_id="x" * 8192)
@example(method="status", job_id="a\x00b")
@example(method="wait", job_id="\udc80")
@example(method="cancel", job_id="a\x00b")
@example(method="retry", job_id="\udc80")
@example(method="delete", job_id="x" * 8192)
@example(method="get", job_id=None)
def test_lookups_and_controls_with_hostile_ids(
    method: str, job_id: Any, new_store: StoreFactory, anyio_backend: tuple[str, dict[str, object]]
) -> None:
    refused = oracle_error(lambda: check_id(job_id))

    async def main() -> None:
        async with JobManager(new_store()) as jobs:
            if refused is not None:
                await expect_refused(lambda: call_by_id(jobs, method, job_id), refused)
            elif method in LOOKUPS:
                assert await call_by_id(jobs, method, job_id) is None  # a valid id nobody used
            else:
                with pytest.raises(JobNotFoundError):
                    await call_by_id(jobs, method, job_id)
            await assert_still_working(jobs)

    run(anyio_backend, main)


# -- queries -------------------------------------------------------------------------------------

QUERY_ARGUMENTS = st.one_of(
    st.tuples(
        st.just("state"), st.one_of(st.sampled_from(State), st.lists(st.sampled_from(State)), anything)
    ),
    st.tuples(st.just("name"), st.one_of(hostile_text, anything)),
    st.tuples(st.just("labels"), hostile_labels),
    st.tuples(st.just("created_after"), st.one_of(hostile_datetime, anything)),
    st.tuples(st.just("created_before"), st.one_of(hostile_datetime, anything)),
    st.tuples(st.just("limit"), st.one_of(hostile_int, anything)),
    st.tuples(
        st.just("offset"), st.one_of(hostile_int, st.sampled_from([2**62, 2**62 + 1, 2**63]), anything)
    ),
)


def check_state_filter(value: Any) -> None:
    """The rule of ``list(state=...)``: None, one State, or an iterable of States (not a str)."""
    if value is None or isinstance(value, State):
        return
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        msg = "state must be a State or several"
        raise TypeError(msg)
    for item in value:
        if not isinstance(item, State):
            msg = "state must be a State or several"
            raise TypeError(msg)


def query_oracle(argument: str, value: Any) -> BaseException | None:
    if argument == "state":
        return oracle_error(lambda: check_state_filter(value))
    if argument == "name":
        return None if value is None else oracle_error(lambda: check_name(value, "name"))
    if argument == "labels":
        return oracle_error(lambda: check_labels(value))
    if argument in {"created_after", "created_before"}:
        return oracle_error(lambda: check_created(value, argument))
    if argument == "limit":
        return oracle_error(lambda: check_page(value, 0))
    return oracle_error(lambda: check_page(50, value))


@SETTINGS
@given(case=QUERY_ARGUMENTS, use_stats=st.booleans())
@example(case=("offset", 2**63), use_stats=False)
@example(case=("limit", 2**63), use_stats=False)
@example(case=("name", "a\x00b"), use_stats=False)
@example(case=("name", "\udc80"), use_stats=True)
@example(case=("labels", {"k": "a\x00b"}), use_stats=True)
@example(case=("labels", {"\udc80": "v"}), use_stats=False)
@example(case=("created_after", datetime.max.replace(tzinfo=timezone(timedelta(hours=-1)))), use_stats=False)
def test_queries_with_hostile_filters(
    case: tuple[str, Any],
    use_stats: bool,
    new_store: StoreFactory,
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    argument, value = case
    refused = query_oracle(argument, value)
    stats = use_stats and argument in {"name", "labels"}

    async def main() -> None:
        async with JobManager(new_store()) as jobs:
            kwargs = {argument: value}
            if refused is not None:
                await expect_refused(lambda: (jobs.stats if stats else jobs.list)(**kwargs), refused)
            elif stats:
                assert isinstance(await jobs.stats(**kwargs), anyjob.JobStatistics)
            else:
                assert isinstance(await jobs.list(**kwargs), list)
            await assert_still_working(jobs)

    run(anyio_backend, main)
