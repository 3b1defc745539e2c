"""The API's errors: one exception type carrying the status, and the JSON body every error gets.

Every error answer is ``{"error": {"type": ..., "message": ...}}``; ``type`` is one of the
stable strings in :data:`ERROR_TYPES` (what a client branches on), ``message`` says what
went wrong in words (what a person reads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, final

from starlette.responses import Response

__all__ = ["ERROR_TYPES", "ApiError", "error_response"]

#: The status of each error type the API answers with.
ERROR_TYPES: Final[Mapping[str, int]] = {
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "invalid_request": 422,
    "unavailable": 503,
}


@final
class ApiError(Exception):
    """An answer other than success: raised by a handler, turned into the JSON error body.

    Args:
        type: One of :data:`ERROR_TYPES` (it decides the status).
        message: What went wrong, for people.
        headers: Extra response headers (``Allow`` on a 405).
    """

    def __init__(self, type: str, message: str, headers: Mapping[str, str] | None = None) -> None:  # noqa: A002 - the body's field
        if type not in ERROR_TYPES:  # pragma: no cover - a typo in this package
            msg = f"unknown error type {type!r}"
            raise ValueError(msg)
        super().__init__(message)
        self.type = type
        self.message = message
        self.status = ERROR_TYPES[type]
        self.headers = dict(headers or {})


def error_response(error: ApiError) -> Response:
    """The JSON answer for *error*."""
    body = json.dumps({"error": {"type": error.type, "message": error.message}}, separators=(",", ":"))
    return Response(body, status_code=error.status, headers=error.headers, media_type="application/json")
