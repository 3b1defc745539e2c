"""The time and query limits of anyjob._limits, and the anyjob._time helpers: both sides of every bound.

When a job may start (``delay`` and ``at``, at most 100 years ahead), the page and
``created_after``/``created_before`` bounds of the queries, and the ``_time`` helpers beneath
them (``to_seconds``, ``ensure_aware``, ``aware_timestamp``, ``short_repr``). The limits of the
values a job carries are in ``test_limits.py``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from tests.test_limits import Level

from anyjob._limits import MAX_DELAY, MAX_OFFSET, MAX_PAGE_LIMIT, check_created, check_page, check_start
from anyjob._time import aware_timestamp, ensure_aware, short_repr, to_seconds

WEST = timezone(timedelta(hours=-1))
EAST = timezone(timedelta(hours=1))


# -- delay and at ------------------------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        (0, 0.0),
        (0.0, 0.0),
        (1.5, 1.5),
        (timedelta(minutes=2), 120.0),
        (MAX_DELAY, MAX_DELAY),
        (timedelta(seconds=MAX_DELAY), MAX_DELAY),
    ],
)
def test_delays_in_bounds(delay: object, expected: float) -> None:
    assert check_start(delay, None, NOW) == expected


def test_max_delay_is_100_years() -> None:
    assert pytest.approx(100 * 365.25 * 24 * 3600) == MAX_DELAY


@pytest.mark.parametrize(
    ("delay", "message"),
    [
        (MAX_DELAY * 1.000001, "delay must be at most 3155760000 seconds (100 years)"),
        (1e12, "at most 3155760000 seconds"),
        (timedelta.max, "at most 3155760000 seconds"),
        (10**400, "at most 3155760000 seconds"),
        (math.inf, "at most 3155760000 seconds"),
        (-1, "delay must not be negative"),
        (-1e-9, "delay must not be negative"),
        (timedelta(seconds=-1), "delay must not be negative"),
        (-(10**400), "delay must not be negative"),
        (math.nan, "delay must not be NaN"),
    ],
)
def test_delays_out_of_bounds_raise_value_error(delay: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_start(delay, None, NOW)


@pytest.mark.parametrize("delay", ["1", True, [1]])
def test_delays_of_another_type_raise_type_error(delay: object) -> None:
    with pytest.raises(TypeError, match="delay must be seconds"):
        check_start(delay, None, NOW)


def test_no_delay_nor_at_means_now() -> None:
    assert check_start(None, None, NOW) == 0.0


def test_delay_and_at_together_raise_value_error() -> None:
    with pytest.raises(ValueError, match="give either delay or at, not both"):
        check_start(1.0, datetime.now(UTC), NOW)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime.fromtimestamp(NOW + 10, UTC), 10.0),
        (datetime.fromtimestamp(NOW + 10, UTC).astimezone(WEST), 10.0),
        (datetime.fromtimestamp(NOW, UTC), 0.0),
        (datetime.fromtimestamp(NOW - 10, UTC), 0.0),  # the past means now
        (datetime.min.replace(tzinfo=UTC), 0.0),
        (datetime.min.replace(tzinfo=EAST), 0.0),  # before year 1 in UTC: still no overflow
        (datetime.fromtimestamp(NOW + MAX_DELAY, UTC), MAX_DELAY),
    ],
)
def test_at_in_bounds(at: datetime, expected: float) -> None:
    assert check_start(None, at, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "at",
    [
        datetime.fromtimestamp(NOW + MAX_DELAY + 1, UTC),
        datetime.max.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=WEST),  # after year 9999 in UTC: ValueError, not OverflowError
    ],
)
def test_at_too_far_ahead_raises_value_error(at: datetime) -> None:
    with pytest.raises(ValueError, match="at must be at most 100 years ahead"):
        check_start(None, at, NOW)


def test_a_naive_at_raises_value_error() -> None:
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        check_start(None, datetime(2030, 1, 1), NOW)  # noqa: DTZ001 - the naive datetime under test


@pytest.mark.parametrize("at", [NOW, "2030-01-01T00:00:00Z", timedelta(1)])
def test_an_at_of_another_type_raises_type_error(at: object) -> None:
    with pytest.raises(TypeError, match=r"at must be a datetime\.datetime"):
        check_start(None, at, NOW)


# -- queries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "offset"), [(1, 0), (MAX_PAGE_LIMIT, 0), (100, MAX_OFFSET), (Level.HIGH, Level.HIGH)]
)
def test_pages_in_bounds(limit: int, offset: int) -> None:
    checked = check_page(limit, offset)
    assert checked == (limit, offset)
    assert all(type(value) is int for value in checked)


@pytest.mark.parametrize(
    ("limit", "offset", "message"),
    [
        (0, 0, f"limit must be between 1 and {MAX_PAGE_LIMIT}, got 0"),
        (MAX_PAGE_LIMIT + 1, 0, "got 1001"),
        (-1, 0, "got -1"),
        (2**63, 0, "limit must be between"),
        (1, -1, f"offset must be between 0 and {MAX_OFFSET} (2**62), got -1"),
        (1, MAX_OFFSET + 1, "offset must be between"),
        (1, 2**63, "offset must be between"),
        pytest.param(1, 10**5000, "offset must be between", id="10**5000"),
    ],
)
def test_pages_out_of_bounds_raise_value_error(limit: int, offset: int, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_page(limit, offset)


@pytest.mark.parametrize(
    ("limit", "offset", "name"), [(True, 0, "limit"), (1.0, 0, "limit"), (1, "0", "offset")]
)
def test_pages_of_another_type_raise_type_error(limit: object, offset: object, name: str) -> None:
    with pytest.raises(TypeError, match=f"{name} must be an int"):
        check_page(limit, offset)


def test_created_filters() -> None:
    assert check_created(None, "created_after") is None
    assert check_created(datetime.fromtimestamp(NOW, UTC), "created_after") == NOW
    assert check_created(datetime.fromtimestamp(NOW, UTC).astimezone(EAST), "created_after") == NOW
    # any aware datetime gives a timestamp, none overflows
    assert (check_created(datetime.max.replace(tzinfo=WEST), "created_before") or 0) > NOW
    assert (check_created(datetime.min.replace(tzinfo=EAST), "created_after") or 0) < 0
    with pytest.raises(ValueError, match="created_before must be timezone-aware"):
        check_created(datetime(2030, 1, 1), "created_before")  # noqa: DTZ001 - the naive datetime under test
    with pytest.raises(TypeError, match=r"created_after must be a datetime\.datetime, not float"):
        check_created(NOW, "created_after")


# -- _time helpers -------------------------------------------------------------------------------


def test_to_seconds_takes_a_huge_int_as_infinite() -> None:
    assert to_seconds(10**400, "timeout", allow_inf=True) == math.inf
    with pytest.raises(ValueError, match="timeout must be finite"):
        to_seconds(10**400, "timeout")
    with pytest.raises(ValueError, match="timeout must not be negative"):
        to_seconds(-(10**400), "timeout", allow_inf=True)


def test_ensure_aware_refuses_a_time_past_utcs_range_with_value_error() -> None:
    with pytest.raises(ValueError, match="outside the range of datetime in UTC"):
        ensure_aware(datetime.max.replace(tzinfo=WEST), "at")
    assert ensure_aware(datetime.max.replace(tzinfo=EAST), "at").tzinfo is UTC
    assert aware_timestamp(datetime.fromtimestamp(NOW, UTC), "at") == NOW


class BadRepr:
    def __repr__(self) -> str:
        msg = "no repr"
        raise RuntimeError(msg)


def test_short_repr_never_raises() -> None:
    assert short_repr(5) == "5"
    assert short_repr(10**5000) == "<an int of 16610 bits>"  # repr() itself raises ValueError
    assert short_repr(BadRepr()) == "<a BadRepr whose repr() fails>"
    long = short_repr("x" * 1000)
    assert len(long) < 100
    assert long.endswith("(1002 characters)")
