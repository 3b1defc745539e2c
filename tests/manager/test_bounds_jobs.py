"""What a job returns, raises and reports, hostile values included, over every store (issue 8).

A job returning data that is not JSON-safe, raising any error (unprintable, huge, NUL or lone
surrogates in its text) or reporting progress out of bounds ends as the oracle in
``test_bounds.py`` says, alone: a healthy job beside it SUCCEEDS, nothing a store cannot keep is
stored, and afterwards the manager still works. Strategies, the ``new_store`` fixture and the
helpers come from ``tests.manager.test_bounds``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.manager import test_bounds as bounds
from tests.manager.test_bounds import (
    RESULTS,
    SETTINGS,
    SPECIALS,
    WAIT,
    StoreFactory,
    UnprintableError,
    _deep,
    anything,
    assert_still_working,
    healthy,
    hostile_int,
    hostile_json,
    hostile_text,
    is_driver_error,
    materialize,
    new_id,
    oracle_error,
    raises_special,
    returns_special,
    run,
    special,
)

from anyjob import Context, JobManager, State
from anyjob._limits import check_message, check_progress, text_problem
from anyjob._records import check_json_safe

#: The store fixture of ``test_bounds``, bound here so pytest finds it for this module.
new_store = bounds.new_store

pytestmark = pytest.mark.usefixtures("silent")


@SETTINGS
@given(spec=hostile_json)
@example(spec=special("cycle"))
@example(spec=special("deep(900)"))
@example(spec=special("10**5000"))
@example(spec="a\x00b")
@example(spec={"file": "\udc80"})
@example(spec={"k\x00": 1})
def test_a_job_returning_bad_data_fails_alone(
    spec: Any, new_store: StoreFactory, anyio_backend: tuple[str, dict[str, object]]
) -> None:
    value = materialize(spec)
    refused = oracle_error(lambda: check_json_safe(value, "the job's result"))

    async def main() -> None:
        async with JobManager(new_store()) as jobs:
            bad = new_id()
            RESULTS[bad] = value
            bad_ref = await jobs.submit(returns_special, id=bad)
            good_ref = await jobs.submit(healthy)
            bad_info = await jobs.wait(bad_ref.id, timeout=WAIT)
            good_info = await jobs.wait(good_ref.id, timeout=WAIT)
            assert good_info is not None
            assert good_info.state is State.SUCCEEDED, good_info
            assert bad_info is not None
            if refused is None:
                assert bad_info.state is State.SUCCEEDED, bad_info
                assert bad_info.result == check_json_safe(value, "the job's result")
            else:
                assert bad_info.state is State.FAILED, bad_info
                assert bad_info.error is not None
                assert "result" in bad_info.error, bad_info.error  # says what could not be stored
                assert text_problem(bad_info.error) is None
            await assert_still_working(jobs)

    run(anyio_backend, main)


hostile_errors = st.one_of(
    hostile_text.map(ValueError),
    hostile_text.map(lambda text: RuntimeError(text, 1)),
    st.just(UnprintableError()),
    st.sampled_from(SPECIALS).map(lambda special: KeyError(special.build())),
    st.just(ValueError(_deep(900))),
)


@SETTINGS
@given(error=hostile_errors)
@example(error=ValueError("a\x00b"))
@example(error=OSError(2, "No such file", "\udc80.txt"))
@example(error=UnprintableError())
@example(error=ValueError("x" * 100_000))
def test_a_job_raising_anything_fails_alone_with_a_storable_error(
    error: Exception, new_store: StoreFactory, anyio_backend: tuple[str, dict[str, object]]
) -> None:
    async def main() -> None:
        async with JobManager(new_store()) as jobs:
            bad = new_id()
            RESULTS[bad] = error
            bad_ref = await jobs.submit(raises_special, id=bad)
            good_ref = await jobs.submit(healthy)
            bad_info = await jobs.wait(bad_ref.id, timeout=WAIT)
            good_info = await jobs.wait(good_ref.id, timeout=WAIT)
            assert good_info is not None
            assert good_info.state is State.SUCCEEDED, good_info
            assert bad_info is not None
            assert bad_info.state is State.FAILED, bad_info
            assert bad_info.error_type == type(error).__qualname__
            assert isinstance(bad_info.error, str)
            assert text_problem(bad_info.error) is None
            await assert_still_working(jobs)

    run(anyio_backend, main)


hostile_progress = st.one_of(
    st.floats(),
    hostile_int,
    st.sampled_from([10**400, -(10**400), Decimal("NaN"), Decimal("sNaN"), Decimal("1e400"), True, 0.5, 1]),
    hostile_text,
    st.none(),
)

hostile_message = st.one_of(st.none(), hostile_text, anything)


@SETTINGS
@given(value=hostile_progress, message=hostile_message)
@example(value=10**400, message=None)
@example(value=math.nan, message=None)
@example(value=0.5, message="a\x00b")
@example(value=0.5, message="file \udc80")
@example(value=0.5, message="x" * 5000)
def test_progress_out_of_bounds_is_refused_inside_the_job_and_the_job_goes_on(
    value: Any, message: Any, new_store: StoreFactory, anyio_backend: tuple[str, dict[str, object]]
) -> None:
    refused = oracle_error(lambda: check_progress(value)) or oracle_error(lambda: check_message(message))
    seen: list[BaseException | None] = []

    async def reports(ctx: Context) -> str:
        try:
            ctx.set_progress(value, message)
        except Exception as error:  # the test records what the job saw
            seen.append(error)
        else:
            seen.append(None)
        return "went on"

    async def main() -> None:
        async with JobManager(new_store()) as jobs:
            bad_ref = await jobs.submit(reports)
            good_ref = await jobs.submit(healthy)
            bad_info = await jobs.wait(bad_ref.id, timeout=WAIT)
            good_info = await jobs.wait(good_ref.id, timeout=WAIT)
            assert good_info is not None
            assert good_info.state is State.SUCCEEDED, good_info
            assert bad_info is not None
            assert bad_info.state is State.SUCCEEDED, bad_info
            assert bad_info.result == "went on"
            [error] = seen
            if refused is None:
                assert error is None, error
                assert bad_info.message == (message if message is not None else None)
            else:
                assert isinstance(error, (TypeError, ValueError)), repr(error)
                assert not is_driver_error(error)
            await assert_still_working(jobs)

    run(anyio_backend, main)
