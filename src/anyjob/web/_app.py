"""``create_app``: the routes of the HTTP API, each a thin handler over the JobManager.

A handler reads its input (``_inputs``), asks the manager, and answers with the objects'
``to_dict()``; the manager's errors become the JSON error bodies of ``_errors`` (one table,
:func:`_answer_errors`). Owner scoping is decided once per request in :class:`_Api`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias, final
from urllib.parse import urlsplit

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from anyjob._exceptions import (
    JobCanceledError,
    JobError,
    JobNotFoundError,
    JobStateError,
    ManagerClosedError,
    StoreError,
)
from anyjob._limits import MAX_OFFSET, MAX_PAGE_LIMIT, check_id
from anyjob._manager import JobManager
from anyjob._records import JobInfo, JobRef, JobStatistics
from anyjob._state import State
from anyjob.web._dashboard import dashboard_routes
from anyjob.web._errors import ApiError, error_response
from anyjob.web._inputs import CONFLICTING, labels_query, list_query, read_body
from anyjob.web._openapi import openapi_document
from anyjob.web._stream import EventsEndpoint, StreamSettings

__all__ = ["Auth", "create_app"]

#: ``auth``: an async callable giving the caller's principal, or ``None`` (answered 401).
Auth: TypeAlias = Callable[[Request], Awaitable[str | None]]
Handler: TypeAlias = Callable[[Request], Awaitable[Response]]

_SUBMIT_FIELDS: Final = frozenset({"name", "params", "labels", "priority", "delay"})
_EXTERNAL_FIELDS: Final = frozenset({"name", "params", "labels", "message", "stale_after"})
_UPDATE_FIELDS: Final = frozenset({"progress", "message"})
_COMPLETE_FIELDS: Final = frozenset({"result"})
_FAIL_FIELDS: Final = frozenset({"error"})
_NOTHING: Final = object()  # a scoped filter no job can match


def _json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _created(request: Request, ref: JobRef) -> Response:
    """201 with the new job's ref, and where to read it (``Location``, under the mount)."""
    return _json(ref.to_dict(), 201, {"Location": f"{request.scope.get('root_path', '')}/api/jobs/{ref.id}"})


def _not_found(job_id: str) -> ApiError:
    return ApiError("not_found", f"no job with id {job_id!r}")


_UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _refuse_cross_site(request: Request) -> None:
    """403 for a change asked by another site's page in the caller's browser (CSRF).

    A browser says where a request comes from: ``Sec-Fetch-Site`` (every current browser)
    or, failing that, ``Origin``. Programs (a worker reporting in, ``curl``) send neither
    and are not concerned; a page of the app's own origin (the dashboard) passes.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site == "cross-site":
            msg = f"{request.method} from another site's page is refused (Sec-Fetch-Site: cross-site)"
            raise ApiError("forbidden", msg)
        return
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc.lower() != host.lower():
            msg = f"{request.method} from the origin {origin!r} is refused: not this site"
            raise ApiError("forbidden", msg)


def _answer_errors(handler: Handler) -> Handler:
    """*handler* with every expected failure answered as a JSON error body (one table).

    Changes (POST, DELETE) asked by another site's page are refused first (403).
    """

    async def answer(request: Request) -> Response:
        try:
            if request.method in _UNSAFE:
                _refuse_cross_site(request)
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except JobNotFoundError as error:
            return error_response(ApiError("not_found", str(error)))
        except (JobStateError, JobCanceledError) as error:
            return error_response(ApiError("conflict", str(error)))
        except (ManagerClosedError, StoreError) as error:
            return error_response(ApiError("unavailable", str(error)))
        except JobError as error:  # e.g. an id in use, or a retry of a function unknown here
            return error_response(ApiError("conflict", str(error)))

    answer.__name__ = handler.__name__
    answer.__doc__ = handler.__doc__
    return answer


async def _checked(call: Awaitable[Any]) -> Any:
    """Await a manager call whose ``TypeError``/``ValueError`` means invalid input (422)."""
    try:
        return await call
    except (TypeError, ValueError) as error:
        raise ApiError("invalid_request", str(error)) from None


def _empty_statistics() -> JobStatistics:
    return JobStatistics(0, dict.fromkeys(State, 0), {}, 0, 0.0, 0.0)


@final
@attrs.define(eq=False)
class _Api:
    """The handlers of one app: its manager, auth and owner label."""

    jobs: JobManager
    auth: Auth | None
    owner_label: str | None
    dashboard: bool

    async def principal(self, request: Request) -> str | None:
        """The caller's principal (``None`` without ``auth``); 401 when ``auth`` gives none."""
        if self.auth is None:
            return None
        principal = await self.auth(request)
        if principal is None:
            raise ApiError("unauthorized", "authentication required: no principal for this request")
        if not isinstance(principal, str):
            msg = f"auth must return a str or None, not {type(principal).__name__}"
            raise TypeError(msg)
        return principal

    def owns(self, principal: str | None, info: JobInfo) -> bool:
        """Whether *principal* may see *info* (always, without an owner label)."""
        return self.owner_label is None or info.labels.get(self.owner_label) == principal

    def scoped(self, labels: dict[str, str] | None, principal: str | None) -> Any:
        """*labels* restricted to the principal's jobs, or ``_NOTHING`` when no job can match."""
        if labels is CONFLICTING:
            return _NOTHING
        if self.owner_label is None or principal is None:
            return labels
        labels = dict(labels or {})
        if labels.setdefault(self.owner_label, principal) != principal:
            return _NOTHING
        return labels

    def owned(self, labels: dict[str, str] | None, principal: str | None) -> dict[str, str] | None:
        """The labels of a job made through the API: the owner label set to the principal."""
        if self.owner_label is None or principal is None:
            return labels
        return {**(labels or {}), self.owner_label: principal}

    async def visible(self, request: Request) -> tuple[str, JobInfo | None]:
        """The path's job id, and its info when owner scoping needed it (404 when not visible)."""
        principal = await self.principal(request)  # 401 before anything about the job
        job_id: str = request.path_params["id"]
        try:
            check_id(job_id)
        except (TypeError, ValueError):
            raise _not_found(job_id) from None
        if self.owner_label is None:
            return job_id, None
        info = await self.jobs.get(job_id)
        if info is None or not self.owns(principal, info):
            raise _not_found(job_id)
        return job_id, info

    # -- jobs ------------------------------------------------------------------------------

    async def list_jobs(self, request: Request) -> Response:
        """``GET /api/jobs``: a page of jobs, newest first, and where the next page starts."""
        principal = await self.principal(request)
        query = list_query(request.query_params)
        labels = self.scoped(query.labels, principal)
        if labels is _NOTHING:
            return _json({"jobs": [], "next_offset": None})
        limit, offset = query.limit, query.offset
        filters: dict[str, Any] = {
            "state": query.states,
            "name": query.name,
            "labels": labels,
            "created_after": query.created_after,
            "created_before": query.created_before,
        }
        more_allowed = offset + limit <= MAX_OFFSET
        fetch = limit + 1 if limit < MAX_PAGE_LIMIT and more_allowed else limit
        infos: list[JobInfo] = await _checked(self.jobs.list(**filters, limit=fetch, offset=offset))
        more = len(infos) > limit
        if more:
            del infos[limit:]
        elif len(infos) == limit == MAX_PAGE_LIMIT and more_allowed:
            more = bool(await self.jobs.list(**filters, limit=1, offset=offset + limit))
        return _json(
            {"jobs": [info.to_dict() for info in infos], "next_offset": offset + limit if more else None}
        )

    async def submit(self, request: Request) -> Response:
        """``POST /api/jobs``: submit a registered function by name."""
        principal = await self.principal(request)
        body = await read_body(request, _SUBMIT_FIELDS)
        name = body.required_text("name")
        labels = self.owned(body.labels(), principal)
        priority = body.integer("priority", 0)
        delay = body.number("delay")
        ref = await _checked(
            self.jobs.submit(name, body.any("params"), labels=labels, priority=priority, delay=delay)
        )
        return _created(request, ref)

    async def get_job(self, request: Request) -> Response:
        """``GET /api/jobs/{id}``: one job."""
        job_id, info = await self.visible(request)
        if info is None:
            info = await self.jobs.get(job_id)
            if info is None:
                raise _not_found(job_id)
        return _json(info.to_dict())

    async def cancel(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/cancel``: 200 with the job's info; 409 when it is already done."""
        job_id, _ = await self.visible(request)
        canceled = await self.jobs.cancel(job_id)
        info = await self.jobs.get(job_id)
        if info is None:
            raise _not_found(job_id)
        if not canceled and info.state.is_done:
            raise ApiError("conflict", f"cannot cancel job {job_id!r}: it is already {info.state.value}")
        return _json(info.to_dict())

    async def retry(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/retry``: queue a failed or canceled job again (409 otherwise)."""
        job_id, _ = await self.visible(request)
        ref = await self.jobs.retry(job_id)
        return _json(ref.to_dict())

    async def delete(self, request: Request) -> Response:
        """``DELETE /api/jobs/{id}``: delete a finished job (409 when it is not done)."""
        job_id, _ = await self.visible(request)
        await self.jobs.delete(job_id)
        return Response(status_code=204)

    async def stats(self, request: Request) -> Response:
        """``GET /api/stats``: counts over the jobs (filtered by ``name`` and ``label``)."""
        principal = await self.principal(request)
        query = request.query_params
        names = query.getlist("name")
        if len(names) > 1:
            raise ApiError("invalid_request", "query parameter 'name' may be given once")
        labels = self.scoped(labels_query(query), principal)
        if labels is _NOTHING:
            return _json(_empty_statistics().to_dict())
        statistics = await _checked(self.jobs.stats(name=names[0] if names else None, labels=labels))
        return _json(statistics.to_dict())

    # -- external jobs -------------------------------------------------------------------------

    async def create_external(self, request: Request) -> Response:
        """``POST /api/external``: record an external job that reports in by id."""
        principal = await self.principal(request)
        body = await read_body(request, _EXTERNAL_FIELDS)
        name = body.required_text("name")
        labels = self.owned(body.labels(), principal)
        call = self.jobs.create(
            name,
            body.any("params"),
            labels=labels,
            message=body.text("message"),
            stale_after=body.number("stale_after"),
        )
        ref = await _checked(call)
        return _created(request, ref)

    async def update(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/update``: progress and/or a message of an external job."""
        job_id, _ = await self.visible(request)
        body = await read_body(request, _UPDATE_FIELDS)
        progress, message = body.number("progress"), body.text("message")
        info = await _checked(self.jobs.update(job_id, progress=progress, message=message))
        return _json(info.to_dict())

    async def complete(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/complete``: end an external job SUCCEEDED with a result."""
        job_id, _ = await self.visible(request)
        body = await read_body(request, _COMPLETE_FIELDS)
        info = await _checked(self.jobs.complete(job_id, body.any("result")))
        return _json(info.to_dict())

    async def fail(self, request: Request) -> Response:
        """``POST /api/jobs/{id}/fail``: end an external job FAILED with an error message."""
        job_id, _ = await self.visible(request)
        body = await read_body(request, _FAIL_FIELDS)
        error = body.required_text("error")
        info = await _checked(self.jobs.fail(job_id, error))
        return _json(info.to_dict())

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``: the OpenAPI 3.1 document of these routes."""
        await self.principal(request)  # 401 without one: it lists the registered names
        root = request.scope.get("root_path", "")
        names = self.jobs.registered  # the functions POST /api/jobs accepts, as registered now
        return _json(openapi_document(root, dashboard=self.dashboard, names=names))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no such route) and 405 (wrong method), as JSON error bodies."""
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    if exc.status_code == 405:  # noqa: PLR2004
        error = ApiError("method_not_allowed", f"method {request.method} is not allowed here", exc.headers)
    elif exc.status_code == 404:  # noqa: PLR2004
        error = ApiError("not_found", f"no route for {request.url.path}")
    else:
        return Response(exc.detail, status_code=exc.status_code, headers=exc.headers)
    return error_response(error)


def _route(path: str, handlers: Mapping[str, Handler]) -> Route:
    """One route for *path*: each method its handler (so a 405 lists every allowed method)."""
    answering = {method: _answer_errors(handler) for method, handler in handlers.items()}
    if "GET" in answering:
        answering["HEAD"] = answering["GET"]
    if len(handlers) == 1:  # one method (and its HEAD): no dispatch needed
        return Route(path, next(iter(answering.values())), methods=list(answering))

    async def dispatch(request: Request) -> Response:
        return await answering[request.method](request)

    dispatch.__name__ = "_".join(handler.__name__ for handler in handlers.values())
    return Route(path, dispatch, methods=list(answering))


def create_app(
    jobs: JobManager,
    *,
    auth: Auth | None = None,
    owner_label: str | None = None,
    dashboard: bool = True,
    keepalive: float = 15.0,
    replay: int = 10_000,
) -> Starlette:
    """The HTTP API (and the live dashboard) of *jobs*, as a Starlette app.

    Mount it in a Starlette or FastAPI app (``app.mount("/jobs", create_app(jobs))``); the
    routes are relative to the mount. The app does not enter the manager: enter it in
    your application's lifespan (see ``docs/web.md``).

    Args:
        jobs: The manager whose jobs the API shows and controls.
        auth: ``async def auth(request) -> str | None`` giving the caller's principal;
            ``None`` answers 401. Without it, every caller may do everything.
        owner_label: With ``auth``, jobs made through the API get
            ``labels[owner_label] = principal``, and a principal sees and acts only on jobs
            whose label is theirs (another owner's job is a 404).
        dashboard: Serve the live dashboard at ``GET /``.
        keepalive: Seconds between keep-alive comments on ``GET /api/events``.
        replay: How many recent events ``GET /api/events`` keeps to resume from
            ``Last-Event-ID`` (an older id gets a fresh snapshot).

    Raises:
        TypeError: *jobs* is not a JobManager, or *auth* is not callable.
        ValueError: *owner_label* without *auth*, or an invalid *keepalive* or *replay*.
    """
    if not isinstance(jobs, JobManager):
        msg = f"jobs must be an anyjob.JobManager, not {type(jobs).__name__}"
        raise TypeError(msg)
    if auth is not None and not callable(auth):
        msg = f"auth must be an async callable (request) -> str | None, not {type(auth).__name__}"
        raise TypeError(msg)
    if owner_label is not None:
        if auth is None:
            msg = "owner_label needs auth: without a principal there is no owner to scope by"
            raise ValueError(msg)
        if not isinstance(owner_label, str) or not owner_label:
            msg = f"owner_label must be a non-empty str, not {owner_label!r}"
            raise ValueError(msg)
    settings = StreamSettings.checked(keepalive, replay)
    api = _Api(jobs, auth, owner_label, dashboard)
    events = EventsEndpoint(jobs, api.principal, api.scoped, owner_label, settings)
    routes: list[BaseRoute] = [
        _route("/api/jobs", {"GET": api.list_jobs, "POST": api.submit}),
        _route("/api/jobs/{id}", {"GET": api.get_job, "DELETE": api.delete}),
        _route("/api/jobs/{id}/cancel", {"POST": api.cancel}),
        _route("/api/jobs/{id}/retry", {"POST": api.retry}),
        _route("/api/jobs/{id}/update", {"POST": api.update}),
        _route("/api/jobs/{id}/complete", {"POST": api.complete}),
        _route("/api/jobs/{id}/fail", {"POST": api.fail}),
        _route("/api/stats", {"GET": api.stats}),
        Route("/api/events", events, methods=["GET"]),
        _route("/api/external", {"POST": api.create_external}),
        _route("/openapi.json", {"GET": api.openapi}),
    ]
    if dashboard:
        routes.extend(dashboard_routes(_answer_errors, api.principal))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.jobs = jobs
    return app
