"""anyjob._records: check_json_safe's limits, and clamped times in from_timestamp and JobRecord.info()."""

from __future__ import annotations

import enum
import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from anyjob import _records
from anyjob._limits import MAX_JSON_DEPTH, MAX_JSON_INT, MIN_JSON_INT
from anyjob._records import JobRecord, check_json_safe, from_timestamp
from anyjob._state import State

SURROGATE = "\udc80"  # what os.fsdecode makes of the byte 0x80 in a file name
NOW = 1_700_000_000.0


class Level(enum.IntEnum):
    HIGH = 5


class Text(str):
    __slots__ = ()


# -- JSON data ---------------------------------------------------------------------------------


def nested(depth: int) -> list[Any]:
    """A list nested *depth* deep: ``nested(1) == []``."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_json_keeps_its_contract() -> None:
    given = {"a": (1, 2, [3]), "b": {"c": None, "d": True, "e": 1.5, "f": "é"}}
    copied = check_json_safe(given, "params")
    assert copied == {"a": [1, 2, [3]], "b": {"c": None, "d": True, "e": 1.5, "f": "é"}}
    assert type(copied["a"]) is list
    given["b"]["c"] = "changed"  # type: ignore[index]
    assert copied["b"]["c"] is None


@pytest.mark.parametrize("value", [None, True, False, 0, 7, MIN_JSON_INT, MAX_JSON_INT, "", "text"])
def test_json_fast_path_returns_the_value_itself(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        msg = "the fast path walked the value"
        raise AssertionError(msg)

    monkeypatch.setattr(_records, "_copy", fail)
    assert check_json_safe(value, "params") is value


def test_json_non_ascii_text_takes_the_slow_path_and_is_kept() -> None:
    assert check_json_safe("été", "params") == "été"
    assert check_json_safe({"clé": ["日本"]}, "params") == {"clé": ["日本"]}


def test_json_depth_bound() -> None:
    assert check_json_safe(nested(MAX_JSON_DEPTH), "params") == nested(MAX_JSON_DEPTH)
    with pytest.raises(ValueError, match=f"nested more than {MAX_JSON_DEPTH} deep"):
        check_json_safe(nested(MAX_JSON_DEPTH + 1), "params")
    deep_dict: dict[str, Any] = {}
    for _ in range(MAX_JSON_DEPTH):
        deep_dict = {"k": deep_dict}
    with pytest.raises(ValueError, match="nested more than"):
        check_json_safe(deep_dict, "params")


def test_json_very_deep_and_cyclic_values_raise_value_error_not_recursion_error() -> None:
    with pytest.raises(ValueError, match="nested more than 64 deep") as caught:
        check_json_safe(nested(900), "the job's result")
    assert len(str(caught.value)) < 400  # the path is shortened
    assert str(caught.value).startswith("the job's result[0][0]")
    cyclic_list: list[Any] = []
    cyclic_list.append(cyclic_list)
    cyclic_dict: dict[str, Any] = {}
    cyclic_dict["self"] = cyclic_dict
    for value in (cyclic_list, cyclic_dict, [1, {"a": cyclic_list}]):
        with pytest.raises(ValueError, match="or holds itself"):
            check_json_safe(value, "params")


@pytest.mark.parametrize(
    "value",
    [
        MAX_JSON_INT + 1,
        MIN_JSON_INT - 1,
        2**100,
        pytest.param(10**5000, id="10**5000"),
        pytest.param(-(10**5000), id="-10**5000"),
    ],
)
def test_json_ints_outside_64_bits_raise_value_error(value: int) -> None:
    for given in (value, [value], {"n": value}):
        with pytest.raises(ValueError, match="outside the signed 64-bit range"):
            check_json_safe(given, "params")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\x00", "params must be JSON-safe, but a string holds a NUL character"),
        ([f"x{SURROGATE}"], "params[0] must be JSON-safe, but a string holds a lone surrogate"),
        ({"k\x00": 1}, "params must be JSON-safe, but the key 'k\\x00' holds a NUL character"),
        (
            {"a": {f"{SURROGATE}": 1}},
            "params['a'] must be JSON-safe, but the key '\\udc80' holds a lone surrogate",
        ),
        ({"a": [1, math.nan]}, "params['a'][1] must be JSON-safe, but holds the non-finite float nan"),
        ([math.inf], "params[0] must be JSON-safe, but holds the non-finite float inf"),
    ],
)
def test_json_bad_text_and_floats_raise_value_error_with_the_path(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_json_safe(value, "params")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "a"}, "params must be JSON-safe, but has the non-string key 1"),
        ({"a": [{(1, 2): 0}]}, "params['a'][0] must be JSON-safe, but has the non-string key (1, 2)"),
        ({"a": {1, 2}}, "params['a'] must be JSON-safe, but is not JSON data"),
        (
            b"bytes",
            "but is not JSON data (None, bool, int, float, str, list, dict with str keys): it holds a bytes",
        ),
        ([object()], "params[0] must be JSON-safe"),
    ],
)
def test_json_other_types_raise_type_error_with_the_path(value: object, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        check_json_safe(value, "params")


def test_json_subclasses_are_copied_as_plain_types() -> None:
    class Floaty(float):
        pass

    copied = check_json_safe({Text("k"): [Level.HIGH, Text("v"), Floaty(0.5)]}, "params")
    assert copied == {"k": [5, "v", 0.5]}
    key = next(iter(copied))
    assert type(key) is str
    assert [type(item) for item in copied["k"]] == [int, str, float]
    assert type(check_json_safe(Level.HIGH, "params")) is int
    with pytest.raises(ValueError, match="non-finite"):
        check_json_safe(Floaty("nan"), "params")


# -- timestamps --------------------------------------------------------------------------------

MIN_UTC = datetime.min.replace(tzinfo=UTC)
MAX_UTC = datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (NOW, datetime.fromtimestamp(NOW, UTC)),
        (0.0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1e20, MAX_UTC),
        (math.inf, MAX_UTC),
        (-1e20, MIN_UTC),
        (-math.inf, MIN_UTC),
        (math.nan, MIN_UTC),
        (2**70, MAX_UTC),
    ],
)
def test_from_timestamp_never_raises(value: float | None, expected: datetime | None) -> None:
    assert from_timestamp(value) == expected


@pytest.mark.parametrize("bad", [1e20, -1e20, math.nan, math.inf])
def test_a_record_with_bad_timestamps_still_gives_info(bad: float) -> None:
    record = JobRecord("id", "name", State.SUCCEEDED, {}, None, 0, bad, bad, "origin", started=bad, ended=bad)
    info = record.info()
    assert info.created_at in (MIN_UTC, MAX_UTC)
    assert info.scheduled_at in (MIN_UTC, MAX_UTC)
    assert info.started_at in (MIN_UTC, MAX_UTC)
    assert info.ended_at in (MIN_UTC, MAX_UTC)
    info.to_dict()
    good = JobRecord("id", "name", State.CREATED, {}, None, 0, NOW, bad, "origin")
    assert good.info().created_at == datetime.fromtimestamp(NOW, UTC)


def test_a_record_with_good_timestamps_gives_exact_info() -> None:
    record = JobRecord(
        "id", "n", State.SUCCEEDED, {}, None, 0, NOW, NOW + 1, "o", started=NOW + 2, ended=NOW + 5
    )
    info = record.info()
    assert info.created_at == datetime.fromtimestamp(NOW, UTC)
    assert info.scheduled_at == datetime.fromtimestamp(NOW + 1, UTC)
    assert info.started_at == datetime.fromtimestamp(NOW + 2, UTC)
    assert info.duration == 3.0


# -- updated, traceback, stale_after -------------------------------------------------------------


def test_new_fields_default_to_none_and_positional_construction_still_works() -> None:
    record = JobRecord("id", "n", State.CREATED, {}, None, 0, NOW, NOW, "o")
    assert (record.updated, record.traceback, record.stale_after) == (None, None, None)
    info = record.info()
    assert (info.updated_at, info.traceback) == (info.created_at, None)
    assert info.updated_at is info.created_at  # reused, not built again
    assert list(info.to_dict())[-2:] == ["updated_at", "traceback"]


@pytest.mark.parametrize(
    ("started", "ended", "updated", "expected"),
    [
        (None, None, None, NOW),
        (NOW + 2, None, None, NOW + 2),
        (NOW + 2, NOW + 5, None, NOW + 5),
        (NOW + 2, None, NOW + 3, NOW + 3),
        (NOW + 2, NOW + 5, NOW + 4, NOW + 5),  # a report before the end: the end is the latest
        (NOW + 2, NOW + 5, NOW + 9, NOW + 9),
        (NOW - 9, None, NOW - 5, NOW),  # times before the creation (a clock step): created wins
    ],
)
def test_updated_at_is_the_latest_sign_of_life(
    started: float | None, ended: float | None, updated: float | None, expected: float
) -> None:
    record = JobRecord(
        "id",
        "n",
        State.RUNNING,
        {},
        None,
        0,
        NOW,
        NOW + 1,
        "o",
        started=started,
        ended=ended,
        updated=updated,
    )
    info = record.info()
    assert info.updated_at == datetime.fromtimestamp(expected, UTC)
    for at in (info.created_at, info.started_at, info.ended_at):
        if at == info.updated_at:
            assert info.updated_at is at  # the datetime already built is reused
    assert info.to_dict()["updated_at"] == datetime.fromtimestamp(expected, UTC).isoformat()


def test_traceback_and_updated_at_in_to_dict_are_json_safe() -> None:
    import json

    record = JobRecord(
        "id", "n", State.FAILED, {}, None, 0, NOW, NOW, "o", started=NOW, ended=NOW + 1, traceback="Tb\n"
    )
    data = record.info().to_dict()
    assert (data["traceback"], data["updated_at"]) == (
        "Tb\n",
        datetime.fromtimestamp(NOW + 1, UTC).isoformat(),
    )
    json.dumps(data)


@pytest.mark.parametrize("bad", [1e20, -1e20, math.nan, math.inf])
def test_a_bad_updated_time_still_gives_info(bad: float) -> None:
    record = JobRecord("id", "n", State.RUNNING, {}, None, 0, NOW, NOW, "o", started=NOW + 1, updated=bad)
    info = record.info()
    if bad > 0:  # later than any datetime
        assert info.updated_at == MAX_UTC
    else:  # earlier than the start (NaN: no time): the start is the latest sign of life
        assert info.updated_at == datetime.fromtimestamp(NOW + 1, UTC)
    info.to_dict()
    # With every time bad (the clamped path), the latest clamped one.
    broken = JobRecord("id", "n", State.RUNNING, {}, None, 0, -1e20, -1e20, "o", started=-1e20, updated=bad)
    assert broken.info().updated_at in (MIN_UTC, MAX_UTC)


def test_snapshot_clamps_a_far_updated_time() -> None:
    from anyjob.stores._base import snapshot

    record = JobRecord("id", "n", State.RUNNING, {}, None, 0, NOW, NOW, "o", updated=1e300)
    assert snapshot(record).updated_at == MAX_UTC
