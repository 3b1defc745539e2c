"""The OpenAPI 3.1 document of the API: every route, parameter, body and answer described."""

from __future__ import annotations

from typing import Any, Final

from anyjob._limits import (
    MAX_DELAY,
    MAX_ID_LENGTH,
    MAX_JSON_DEPTH,
    MAX_JSON_INT,
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OFFSET,
    MAX_PAGE_LIMIT,
    MAX_PRIORITY,
    MIN_JSON_INT,
    MIN_PRIORITY,
)
from anyjob._state import State
from anyjob._version import __version__
from anyjob.web._errors import ERROR_TYPES

__all__ = ["openapi_document"]

_STATES: Final = [state.value for state in State]
#: Text every store can keep: no NUL character (JSON Schema regexes are ECMA 262's).
_NO_NUL: Final = "^[^\\u0000]*$"
_TIME: Final = {"type": "string", "format": "date-time"}
_TIME_OR_NULL: Final = {"type": ["string", "null"], "format": "date-time"}
_TEXT_OR_NULL: Final = {"type": ["string", "null"]}
_ANY: Final[dict[str, Any]] = {"description": "Any JSON value."}
_JSON: Final[dict[str, Any]] = {
    "$ref": "#/components/schemas/JsonValue",
    "description": (
        f"JSON data: numbers within the signed 64-bit range, strings without NUL, nested at most "
        f"{MAX_JSON_DEPTH} deep."
    ),
}
_LABELS: Final = {
    "type": "object",
    "maxProperties": MAX_LABELS,
    "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_VALUE_LENGTH, "pattern": _NO_NUL},
    "propertyNames": {"minLength": 1, "maxLength": MAX_LABEL_KEY_LENGTH, "pattern": _NO_NUL},
    "description": "str -> str pairs to filter by.",
}
_NAME: Final = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": _NO_NUL}
_MESSAGE: Final = {"type": ["string", "null"], "maxLength": MAX_MESSAGE_LENGTH, "pattern": _NO_NUL}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    schema["required"] = list(properties) if required is None else required
    return {**schema, **extra}


_SCHEMAS: Final[dict[str, Any]] = {
    "State": {"type": "string", "enum": _STATES},
    "JsonValue": {
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number", "minimum": MIN_JSON_INT, "maximum": MAX_JSON_INT},
            {"type": "string", "pattern": _NO_NUL},
            {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
            {
                "type": "object",
                "propertyNames": {"pattern": _NO_NUL},
                "additionalProperties": {"$ref": "#/components/schemas/JsonValue"},
            },
        ],
    },
    "JobInfo": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "state": _ref("State"),
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "message": _TEXT_OR_NULL,
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "params": _ANY,
            "result": _ANY,
            "error": _TEXT_OR_NULL,
            "error_type": _TEXT_OR_NULL,
            "priority": {"type": "integer"},
            "attempts": {"type": "integer", "minimum": 0},
            "created_at": _TIME,
            "scheduled_at": _TIME,
            "started_at": _TIME_OR_NULL,
            "ended_at": _TIME_OR_NULL,
            "duration": {"type": ["number", "null"], "minimum": 0},
            "updated_at": _TIME,
            "traceback": _TEXT_OR_NULL,
        },
        description="A snapshot of one job (JobInfo.to_dict()).",
    ),
    "JobRef": _object(
        {"id": {"type": "string"}, "name": {"type": "string"}, "scheduled_at": _TIME},
        description="What submitting or creating a job answers (JobRef.to_dict()).",
    ),
    "JobPage": _object(
        {
            "jobs": {"type": "array", "items": _ref("JobInfo")},
            "next_offset": {
                "type": ["integer", "null"],
                "description": "The offset of the next page, or null when this is the last.",
            },
        }
    ),
    "JobStatistics": _object(
        {
            "total": {"type": "integer", "minimum": 0},
            "by_state": _object({state: {"type": "integer", "minimum": 0} for state in _STATES}),
            "by_name": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
            "active": {"type": "integer", "minimum": 0},
            "success_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "average_duration": {"type": "number", "minimum": 0},
        },
        description="Counts over the jobs (JobStatistics.to_dict()).",
    ),
    "JobEvent": _object(
        {
            "job_id": {"type": "string"},
            "state": _ref("State"),
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "message": _TEXT_OR_NULL,
            "at": _TIME,
        },
        description="One event of the stream (the data of an unnamed SSE event).",
    ),
    "Error": _object(
        {
            "error": _object(
                {"type": {"type": "string", "enum": list(ERROR_TYPES)}, "message": {"type": "string"}}
            )
        }
    ),
    "SubmitRequest": _object(
        {
            "name": {**_NAME, "description": "The name a function was registered under."},
            "params": _JSON,
            "labels": {"anyOf": [_LABELS, {"type": "null"}]},
            "priority": {"type": "integer", "minimum": MIN_PRIORITY, "maximum": MAX_PRIORITY, "default": 0},
            "delay": {
                "type": ["number", "null"],
                "minimum": 0,
                "maximum": MAX_DELAY,
                "description": "Seconds to wait before starting.",
            },
        },
        required=["name"],
    ),
    "ExternalRequest": _object(
        {
            "name": _NAME,
            "params": _JSON,
            "labels": {"anyOf": [_LABELS, {"type": "null"}]},
            "message": _MESSAGE,
            "stale_after": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "maximum": MAX_JSON_INT,
                "description": "Seconds without a report before a running job ends FAILED (JobLostError).",
            },
        },
        required=["name"],
    ),
    "UpdateRequest": _object(
        {
            "progress": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "message": _MESSAGE,
        },
        required=[],
    ),
    "CompleteRequest": _object({"result": _JSON}, required=[]),
    "FailRequest": _object({"error": {"type": "string"}}),
}

_ERRORS: Final = {
    401: "No principal: the app's auth returned None.",
    403: "A change asked by another site's page (Sec-Fetch-Site: cross-site, or a foreign Origin).",
    404: "No such job, or one the caller may not see.",
    409: "The job's state does not allow it.",
    422: "Invalid input (the message says which).",
    503: "The job manager is not open, or its store is unreachable.",
}


def _answers(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    answers = dict(ok)
    for status in (401, *errors, 503):
        answers[str(status)] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return answers


def _json_ok(status: int, schema: str, description: str, links: tuple[str, ...] = ()) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if links:  # what a client can do next with the job's id (clients and schemathesis follow these)
        answer["links"] = {
            operation: {"operationId": operation, "parameters": {"id": "$response.body#/id"}}
            for operation in links
        }
    return {str(status): answer}


_JOB_LINKS: Final = ("get_job", "cancel_job", "retry_job", "delete_job")
_EXTERNAL_LINKS: Final = (*_JOB_LINKS, "update_job", "complete_job", "fail_job")


def _body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    if schema.get("type") == "array":
        parameter.update(style="form", explode=True)
    return parameter


_ID: Final = {
    "name": "id",
    "in": "path",
    "required": True,
    # Any id but "." and ".." (a URL path cannot carry those, nor a "/"): one char that is
    # not a dot, or a dot and one that is not, or two dots and a third char.
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_LENGTH,
        "pattern": "^(?:[^/.]|\\.[^/.]|\\.\\.[^/])[^/]*$",
    },
    "description": "The job's id.",
}
_LABEL_QUERY: Final = _query(
    "label",
    {
        "type": "array",
        "maxItems": MAX_LABELS,
        "items": {
            "type": "string",
            "pattern": f"^[^:\\u0000]{{1,{MAX_LABEL_KEY_LENGTH}}}:[^\\u0000]{{0,{MAX_LABEL_VALUE_LENGTH}}}$",
        },
    },
    "key:value; repeatable; jobs having all the pairs (none match a key given twice with two values).",
)
_NAME_QUERY: Final = _query("name", _NAME, "Only jobs with this name.")


def _operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "operationId": extra.pop("operation_id"), "responses": responses, **extra}


def _paths(names: list[str]) -> dict[str, Any]:
    info_ok = _json_ok(200, "JobInfo", "The job's info.")
    return {
        "/api/jobs": {
            "get": _operation(
                "List jobs, newest first",
                _answers(_json_ok(200, "JobPage", "A page of jobs."), 422),
                operation_id="list_jobs",
                parameters=[
                    _query("state", {"type": "array", "items": _ref("State")}, "Only jobs in these states."),
                    _NAME_QUERY,
                    _LABEL_QUERY,
                    _query("created_after", _TIME, "Only jobs created after this (ISO 8601 with offset)."),
                    _query("created_before", _TIME, "Only jobs created before this (ISO 8601 with offset)."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_LIMIT, "default": 50},
                        "Page size.",
                    ),
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
                        "Skip this many.",
                    ),
                ],
            ),
            "post": _operation(
                "Submit a registered function by name",
                _answers(_json_ok(201, "JobRef", "The job was accepted.", _JOB_LINKS), 409, 422, 403),
                operation_id="submit_job",
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _submit_schema(names)}},
                },
            ),
        },
        "/api/jobs/{id}": {
            "parameters": [_ID],
            "get": _operation("One job", _answers(info_ok, 404), operation_id="get_job"),
            "delete": _operation(
                "Delete a finished job",
                _answers({"204": {"description": "Deleted."}}, 404, 409, 403),
                operation_id="delete_job",
            ),
        },
        "/api/jobs/{id}/cancel": {
            "parameters": [_ID],
            "post": _operation("Cancel a job", _answers(info_ok, 404, 409, 403), operation_id="cancel_job"),
        },
        "/api/jobs/{id}/retry": {
            "parameters": [_ID],
            "post": _operation(
                "Retry a failed or canceled job",
                _answers(_json_ok(200, "JobRef", "Queued again."), 404, 409, 403),
                operation_id="retry_job",
            ),
        },
        "/api/jobs/{id}/update": {
            "parameters": [_ID],
            "post": _operation(
                "Report progress and/or a message of an external job",
                _answers(info_ok, 404, 409, 422, 403),
                operation_id="update_job",
                requestBody=_body("UpdateRequest", required=False),
            ),
        },
        "/api/jobs/{id}/complete": {
            "parameters": [_ID],
            "post": _operation(
                "End an external job SUCCEEDED",
                _answers(info_ok, 404, 409, 422, 403),
                operation_id="complete_job",
                requestBody=_body("CompleteRequest", required=False),
            ),
        },
        "/api/jobs/{id}/fail": {
            "parameters": [_ID],
            "post": _operation(
                "End an external job FAILED",
                _answers(info_ok, 404, 409, 422, 403),
                operation_id="fail_job",
                requestBody=_body("FailRequest"),
            ),
        },
        "/api/stats": {
            "get": _operation(
                "Counts over the jobs",
                _answers(_json_ok(200, "JobStatistics", "The counts."), 422),
                operation_id="job_stats",
                parameters=[_NAME_QUERY, _LABEL_QUERY],
            ),
        },
        "/api/events": {
            "get": _operation(
                "Server-Sent Events of JobEvents",
                _answers(
                    {
                        "200": {
                            "description": (
                                "An endless text/event-stream. Unnamed events carry a JobEvent; "
                                "'snapshot' events carry {\"jobs\": [JobInfo...]} (the active jobs, or "
                                "the jobs asked for by id) when the stream starts without a "
                                "resumable Last-Event-ID. Event ids increase; comments keep it alive."
                            ),
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        }
                    },
                    422,
                ),
                operation_id="job_events",
                parameters=[
                    _query("id", {"type": "array", "items": {"type": "string"}}, "Only these jobs' events."),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Resume after this event id.",
                    },
                ],
            ),
        },
        "/api/external": {
            "post": _operation(
                "Create an external job",
                _answers(_json_ok(201, "JobRef", "The job was recorded.", _EXTERNAL_LINKS), 409, 422, 403),
                operation_id="create_external_job",
                requestBody=_body("ExternalRequest"),
            ),
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {}}}},
            },
        },
    }


def _submit_schema(names: list[str]) -> dict[str, Any]:
    """``SubmitRequest`` with ``name`` one of the names registered now (none: no valid body)."""
    name: dict[str, Any] = {**_NAME, "enum": names} if names else {"not": {}}
    return {"allOf": [_ref("SubmitRequest"), {"properties": {"name": name}}]}


def openapi_document(root_path: str, *, dashboard: bool, names: list[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with paths relative to *root_path* (the mount).

    Args:
        root_path: Where the app is mounted (``servers``).
        dashboard: Whether ``GET /`` is served.
        names: The function names ``POST /api/jobs`` accepts (registered now).
    """
    paths = _paths(names)
    if dashboard:
        paths["/"] = {
            "get": {
                "summary": "The live dashboard",
                "operationId": "dashboard",
                "responses": _answers({"200": {"description": "HTML.", "content": {"text/html": {}}}}),
            }
        }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "anyjob", "version": __version__, "description": "Watch and control anyjob jobs."},
        "paths": paths,
        "components": {"schemas": _SCHEMAS},
    }
    if root_path:
        document["servers"] = [{"url": root_path}]
    return document
