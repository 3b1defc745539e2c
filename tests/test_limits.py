"""The limits of anyjob._limits and the JSON checks of anyjob._records: both sides of every bound.

This module covers the values a job carries: text, ids and names, labels, priority, progress and
its message, the errors recorded on a job's behalf, and the documented table of limits. When a
job may start (``delay``/``at``), the query bounds (pages, ``created_*`` filters) and the
``anyjob._time`` helpers under them are in ``test_limits_time.py``.
"""

from __future__ import annotations

import enum
import math
import pathlib
import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

import pytest

from anyjob import _limits
from anyjob._limits import (
    MAX_ERROR_LENGTH,
    MAX_ID_LENGTH,
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PRIORITY,
    MIN_PRIORITY,
    check_id,
    check_labels,
    check_message,
    check_name,
    check_new_id,
    check_priority,
    check_progress,
    describe_error,
    printable_text,
    text_problem,
)

SURROGATE = "\udc80"  # what os.fsdecode makes of the byte 0x80 in a file name


class Level(enum.IntEnum):
    HIGH = 5


class Text(str):
    __slots__ = ()


# -- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("plain", None),
        ("", None),
        ("été ✓ 日本", None),
        ("a\x00b", "a NUL character"),
        (f"name{SURROGATE}", "lone surrogate"),
        (f"é{SURROGATE}", "lone surrogate"),
    ],
)
def test_text_problem(value: str, problem: str | None) -> None:
    found = text_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


# -- ids and names -----------------------------------------------------------------------------

ID_CHECKS = [check_id, check_new_id]


@pytest.mark.parametrize("check", ID_CHECKS)
@pytest.mark.parametrize("value", ["a", "x" * MAX_ID_LENGTH, "été-日本", "with space"])
def test_ids_in_bounds_are_taken(check: Callable[[object], str], value: str) -> None:
    assert check(value) == value


@pytest.mark.parametrize("check", ID_CHECKS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "job id must not be empty"),
        ("x" * (MAX_ID_LENGTH + 1), f"job id must be 1 to {MAX_ID_LENGTH} characters long, got 256"),
        ("x" * 8192, "got 8192"),
        ("a\x00b", "NUL"),
        (f"id{SURROGATE}", "lone surrogate"),
    ],
)
def test_ids_out_of_bounds_raise_value_error(
    check: Callable[[object], str], value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check(value)


@pytest.mark.parametrize("check", ID_CHECKS)
@pytest.mark.parametrize("value", [None, 5, b"id", ["id"]])
def test_ids_of_another_type_raise_type_error(check: Callable[[object], str], value: object) -> None:
    with pytest.raises(TypeError, match="job id must be a str"):
        check(value)


def test_a_str_subclass_is_copied_as_a_plain_str() -> None:
    for check in (check_id, check_name):
        checked = check(Text("abc"))
        assert type(checked) is str
        assert checked == "abc"
    assert type(check_id(Text("é"))) is str


@pytest.mark.parametrize("value", ["n", "x" * MAX_NAME_LENGTH, "thumbnail.été"])
def test_names_in_bounds_are_taken(value: str) -> None:
    assert check_name(value) == value


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("", ValueError, "job name must not be empty"),
        ("x" * (MAX_NAME_LENGTH + 1), ValueError, f"1 to {MAX_NAME_LENGTH} characters"),
        ("a\x00", ValueError, "NUL"),
        (SURROGATE, ValueError, "lone surrogate"),
        (3, TypeError, "job name must be a str, not int"),
        (None, TypeError, "job name must be a str, not NoneType"),
    ],
)
def test_names_out_of_bounds(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        check_name(value)


def test_name_messages_say_which_argument() -> None:
    with pytest.raises(ValueError, match=r"^name filter must not be empty$"):
        check_name("", "name filter")


# -- labels ----------------------------------------------------------------------------------


def test_no_labels_give_an_empty_read_only_mapping() -> None:
    labels = check_labels(None)
    assert isinstance(labels, MappingProxyType)
    assert dict(labels) == {}
    assert check_labels(None) is labels  # one shared empty mapping


def test_labels_are_a_read_only_copy() -> None:
    given = {"kind": "io", "team": "été"}
    labels = check_labels(given)
    given["kind"] = "cpu"
    assert dict(labels) == {"kind": "io", "team": "été"}
    with pytest.raises(TypeError):
        labels["kind"] = "x"  # type: ignore[index]


def test_labels_at_their_bounds_are_taken() -> None:
    many = {f"k{i}": "" for i in range(MAX_LABELS)}
    assert len(check_labels(many)) == MAX_LABELS
    big = {"k" * MAX_LABEL_KEY_LENGTH: "v" * MAX_LABEL_VALUE_LENGTH}
    assert dict(check_labels(big)) == big
    assert dict(check_labels({"k": ""})) == {"k": ""}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({f"k{i}": "v" for i in range(MAX_LABELS + 1)}, f"at most {MAX_LABELS} pairs, got 65"),
        ({"": "v"}, "a label key must not be empty"),
        ({"k" * (MAX_LABEL_KEY_LENGTH + 1): "v"}, f"1 to {MAX_LABEL_KEY_LENGTH} characters long, got 129"),
        (
            {"k": "v" * (MAX_LABEL_VALUE_LENGTH + 1)},
            f"0 to {MAX_LABEL_VALUE_LENGTH} characters long, got 1025",
        ),
        ({"k\x00": "v"}, "a label key must be text"),
        ({"k": "v\x00"}, "the value of label 'k' must be text"),
        ({f"k{SURROGATE}": "v"}, "lone surrogate"),
        ({"k": SURROGATE}, "lone surrogate"),
    ],
)
def test_labels_out_of_bounds_raise_value_error(labels: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_labels(labels)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([("k", "v")], "labels must be a mapping of str to str, not list"),
        ("k=v", "not str"),
        ({1: "v"}, "labels must map str to str, got 1: 'v'"),
        ({"k": 1}, "labels must map str to str, got 'k': 1"),
        ({"k": None}, "got 'k': None"),
    ],
)
def test_labels_of_another_type_raise_type_error(labels: object, message: str) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        check_labels(labels)


# -- priority --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1, MIN_PRIORITY, MAX_PRIORITY])
def test_priorities_in_bounds_are_taken(value: int) -> None:
    assert check_priority(value) == value


def test_priority_bounds_are_those_of_a_postgresql_integer() -> None:
    assert (MIN_PRIORITY, MAX_PRIORITY) == (-(2**31), 2**31 - 1)


@pytest.mark.parametrize(
    "value", [MIN_PRIORITY - 1, MAX_PRIORITY + 1, 2**31, 2**100, pytest.param(-(10**5000), id="-10**5000")]
)
def test_priorities_out_of_bounds_raise_value_error(value: int) -> None:
    with pytest.raises(ValueError, match=f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}"):
        check_priority(value)


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, Decimal(1)])
def test_priorities_of_another_type_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="priority must be an int"):
        check_priority(value)


def test_an_int_enum_priority_is_copied_as_a_plain_int() -> None:
    checked = check_priority(Level.HIGH)
    assert type(checked) is int
    assert checked == 5


# -- progress and message ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1, 1.0),
        (0.0, 0.0),
        (0.5, 0.5),
        (1.0, 1.0),
        (Fraction(1, 4), 0.25),
        (Decimal("0.75"), 0.75),
        (5e-324, 5e-324),
    ],
)
def test_progress_in_bounds_is_a_float(value: object, expected: float) -> None:
    checked = check_progress(value)
    assert type(checked) is float
    assert checked == expected


@pytest.mark.parametrize(
    "value",
    [
        -1,
        2,
        -1e-12,
        1.0000000001,
        math.nan,
        math.inf,
        -math.inf,
        10**400,
        -(10**400),
        Fraction(10**400),
        Decimal("1e400"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Fraction(3, 2),
    ],
)
def test_progress_out_of_bounds_raises_value_error(value: object) -> None:
    with pytest.raises(ValueError, match=r"progress must be a finite number in \[0, 1\]"):
        check_progress(value)


@pytest.mark.parametrize("value", [True, False, "0.5", None, 1j, [0.5]])
def test_progress_of_another_type_raises_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="progress must be a real number"):
        check_progress(value)


@pytest.mark.parametrize("value", [None, "", "half way", "é" * MAX_MESSAGE_LENGTH, "x" * MAX_MESSAGE_LENGTH])
def test_messages_in_bounds_are_taken(value: str | None) -> None:
    assert check_message(value) == value


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("x" * (MAX_MESSAGE_LENGTH + 1), ValueError, f"0 to {MAX_MESSAGE_LENGTH} characters long, got 4097"),
        ("a\x00", ValueError, "progress message must be text"),
        (f"file {SURROGATE}.txt", ValueError, "lone surrogate"),
        (5, TypeError, "progress message must be a str or None, not int"),
        (b"bytes", TypeError, "not bytes"),
    ],
)
def test_messages_out_of_bounds(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        check_message(value)


# -- errors recorded on a job's behalf ----------------------------------------------------------


def test_printable_text_escapes_what_no_store_keeps() -> None:
    assert printable_text("plain") == "plain"
    assert printable_text("é") == "é"
    assert printable_text("a\x00b") == "a\\x00b"
    assert printable_text(f"f{SURROGATE}") == "f\\udc80"
    assert text_problem(printable_text(f"\x00{SURROGATE}é")) is None


def test_printable_text_cuts_long_text() -> None:
    text = printable_text("x" * (MAX_ERROR_LENGTH * 3))
    assert len(text) <= MAX_ERROR_LENGTH
    assert text.endswith(f"({MAX_ERROR_LENGTH * 3} characters, cut)")
    assert printable_text("x" * MAX_ERROR_LENGTH) == "x" * MAX_ERROR_LENGTH


class UnprintableError(Exception):
    def __str__(self) -> str:
        msg = "no str for you"
        raise RuntimeError(msg)


def test_describe_error_never_raises() -> None:
    assert describe_error(ValueError("bad input")) == "bad input"
    assert describe_error(ValueError()) == "ValueError"
    assert describe_error(ValueError(f"path {SURROGATE}\x00")) == "path \\udc80\\x00"
    text = describe_error(UnprintableError())
    assert "UnprintableError" in text
    assert "RuntimeError" in text


# -- the documented table ----------------------------------------------------------------------------


def test_every_limit_is_in_the_module_docstring_and_the_docs() -> None:
    docs = (pathlib.Path(__file__).parent.parent / "docs" / "limits.md").read_text(encoding="utf-8")
    doc = _limits.__doc__ or ""
    for name in _limits.__all__:
        if name.isupper():
            assert name in docs, name
            if name != "MAX_ERROR_LENGTH":
                assert name in doc, name
