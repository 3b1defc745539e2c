"""Reading what a request asks for: query filters and JSON bodies, checked where they enter.

Every problem is an :class:`~anyjob.web._errors.ApiError` of type ``invalid_request`` (422)
whose message names the parameter or field; the manager's own checks (lengths, JSON
safety, ranges) come after these and answer the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, NoReturn, cast

from starlette.datastructures import QueryParams
from starlette.requests import Request

from anyjob._limits import MAX_JSON_INT, MAX_LABELS, MAX_OFFSET, MAX_PAGE_LIMIT
from anyjob._state import State
from anyjob.web._errors import ApiError

__all__ = [
    "CONFLICTING",
    "Body",
    "ListQuery",
    "labels_query",
    "list_query",
    "read_body",
]

_STATES: Final = {state.value: state for state in State}
#: The most bytes of a request body (a job's params are JSON, not uploads).
MAX_BODY: Final = 4 * 1024 * 1024


def _invalid(message: str) -> NoReturn:
    """Answer 422 with *message* (every check of this module ends here)."""
    raise ApiError("invalid_request", message)


def _one(query: QueryParams, key: str) -> str | None:
    values = query.getlist(key)
    if not values:
        return None
    if len(values) > 1:
        _invalid(f"query parameter {key!r} may be given once, not {len(values)} times")
    return values[0]


def _int(text: str, key: str, low: int, high: int) -> int:
    stripped = text.strip()
    if not stripped.lstrip("-").isdigit() or len(stripped) > 20:  # noqa: PLR2004 - more digits than any int64
        _invalid(f"query parameter {key!r} must be an integer, not {text!r}")
    value = int(stripped)
    if not low <= value <= high:
        _invalid(f"query parameter {key!r} must be between {low} and {high}, not {value}")
    return value


def _time(text: str, key: str) -> datetime:
    """An RFC 3339 / ISO 8601 date-time with an offset (a leap second counts as :59.999999)."""
    normal = text.upper()
    leap = len(normal) >= 19 and normal[16:19] == ":60"  # noqa: PLR2004 - "YYYY-MM-DDTHH:MM:SS"
    if leap:
        normal = normal[:17] + "59" + normal[19:]
    try:
        value: datetime | None = datetime.fromisoformat(normal)
    except ValueError:
        value = None
    if value is not None and leap:
        value = value.replace(microsecond=999_999)
    if value is None:
        _invalid(f"query parameter {key!r} must be an ISO 8601 date-time, not {text!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        _invalid(f"query parameter {key!r} must have a UTC offset (like 'Z' or '+02:00'): {text!r}")
    return value


#: What :func:`labels_query` gives for pairs no job can have (one key, two values).
CONFLICTING: Final[dict[str, str]] = {}


def labels_query(query: QueryParams) -> dict[str, str] | None:
    """The ``label=key:value`` pairs (repeatable) as a dict, or None when none are given.

    A key given twice with different values matches no job: the answer is then the
    :data:`CONFLICTING` dict itself (callers answer "nothing" without asking the store).
    """
    values = query.getlist("label")
    if not values:
        return None
    if len(values) > MAX_LABELS:
        _invalid(f"query parameter 'label' may be given at most {MAX_LABELS} times, not {len(values)}")
    labels: dict[str, str] = {}
    conflict = False
    for value in values:
        key, colon, label = value.partition(":")
        if not colon or not key:
            _invalid(f"query parameter 'label' must be 'key:value', not {value!r}")
        conflict = conflict or labels.get(key, label) != label
        labels[key] = label
    return CONFLICTING if conflict else labels


class ListQuery:
    """The filters and page of ``GET /api/jobs``."""

    __slots__ = ("created_after", "created_before", "labels", "limit", "name", "offset", "states")

    def __init__(self) -> None:
        self.states: list[State] | None = None
        self.name: str | None = None
        self.labels: dict[str, str] | None = None
        self.created_after: datetime | None = None
        self.created_before: datetime | None = None
        self.limit = 50
        self.offset = 0


def list_query(query: QueryParams) -> ListQuery:
    """The filters of ``GET /api/jobs``, checked."""
    result = ListQuery()
    states = query.getlist("state")
    if states:
        unknown = [state for state in states if state not in _STATES]
        if unknown:
            _invalid(f"unknown state {unknown[0]!r}; expected one of {', '.join(_STATES)}")
        result.states = [_STATES[state] for state in states]
    result.name = _one(query, "name")
    result.labels = labels_query(query)
    after = _one(query, "created_after")
    if after is not None:
        result.created_after = _time(after, "created_after")
    before = _one(query, "created_before")
    if before is not None:
        result.created_before = _time(before, "created_before")
    limit = _one(query, "limit")
    if limit is not None:
        result.limit = _int(limit, "limit", 1, MAX_PAGE_LIMIT)
    offset = _one(query, "offset")
    if offset is not None:
        result.offset = _int(offset, "offset", 0, MAX_OFFSET)
    return result


def _bounded_float(text: str) -> float:
    """A JSON number with a fraction or an exponent, refused beyond the signed 64-bit range.

    JSON Schema counts ``1e300`` as an integer, and the API's integers are signed 64-bit:
    refusing every number beyond that range (not only the ones written as integers) keeps
    the answers what ``/openapi.json`` says.
    """
    value = float(text)
    if not -MAX_JSON_INT <= value <= MAX_JSON_INT:
        _invalid(f"the body holds the number {text}, outside the signed 64-bit range")
    return value


def _no_constants(name: str) -> NoReturn:
    _invalid(f"the body is not valid JSON: {name} is not a JSON number")


class Body:
    """A request's JSON object, read field by field with the type each field must have."""

    __slots__ = ("_fields", "_values")

    def __init__(self, values: Mapping[str, Any], fields: frozenset[str]) -> None:
        unknown = sorted(set(values) - fields)
        if unknown:
            expected = ", ".join(sorted(fields)) or "none"
            _invalid(f"unknown field {unknown[0]!r} in the body; expected fields: {expected}")
        self._values = values
        self._fields = fields

    def any(self, key: str) -> Any:
        """The field's value, any JSON (None when absent)."""
        return self._values.get(key)

    def text(self, key: str) -> str | None:
        """A string field (``None`` when absent or null)."""
        value = self._values.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            _invalid(f"field {key!r} must be a string, not {_json_type(value)}")
        return value

    def required_text(self, key: str) -> str:
        """A string field that must be there."""
        value = self.text(key)
        if value is None:
            _invalid(f"the body needs the field {key!r} (a string)")
        return value

    def number(self, key: str) -> float | None:
        """A number field (``None`` when absent or null)."""
        value = self._values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            _invalid(f"field {key!r} must be a number, not {_json_type(value)}")
        number = float(value) if isinstance(value, float) or abs(value) < 2**53 else math.inf
        if not math.isfinite(number):
            _invalid(f"field {key!r} must be a finite number")
        return number

    def integer(self, key: str, default: int) -> int:
        """An integer field (*default* when absent or null); ``3.0`` is the integer 3, as in JSON Schema."""
        value = self._values.get(key)
        if value is None:
            return default
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            _invalid(f"field {key!r} must be an integer, not {_json_type(value)}")
        return value

    def labels(self, key: str = "labels") -> dict[str, str] | None:
        """An object of string values (``None`` when absent or null)."""
        value = self._values.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            _invalid(f"field {key!r} must be an object of strings, not {_json_type(value)}")
        labels: dict[str, str] = {}
        for label, text in value.items():  # pyright: ignore[reportUnknownVariableType]
            if not isinstance(text, str):
                _invalid(f"label {label!r} must be a string, not {_json_type(cast('object', text))}")
            labels[str(label)] = text  # pyright: ignore[reportUnknownArgumentType]
        return labels


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


async def read_body(request: Request, fields: frozenset[str]) -> Body:
    """The request's JSON object body (an empty body is ``{}``), with only *fields* allowed."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            _invalid(f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return Body({}, fields)
    value: Any = None
    problem: str | None = None
    try:
        value = json.loads(raw, parse_float=_bounded_float, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        problem = str(error)
    if problem is not None:
        _invalid(f"the body is not valid JSON: {problem}")
    if not isinstance(value, dict):
        _invalid(f"the body must be a JSON object, not {_json_type(cast('object', value))}")
    return Body(value, fields)  # pyright: ignore[reportUnknownArgumentType]
