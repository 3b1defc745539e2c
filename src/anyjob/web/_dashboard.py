"""``GET /``: the live dashboard, one HTML page with its script and style shipped in the package."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from anyjob.web._errors import ApiError

__all__ = ["dashboard_routes"]

Handler = Callable[[Request], Awaitable[Response]]

_MEDIA_TYPES: Final = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _static(name: str) -> bytes:
    return (resources.files("anyjob.web") / "static" / name).read_bytes()


def dashboard_routes(
    answer_errors: Callable[[Handler], Handler], principal: Callable[[Request], Awaitable[str | None]]
) -> list[BaseRoute]:
    """The dashboard's routes: the page at ``/`` (behind ``auth``) and its two static files."""
    page = _static("index.html").decode()
    files = {name: _static(name) for name in _MEDIA_TYPES}

    async def dashboard(request: Request) -> Response:
        """``GET /``: the dashboard's page, its links relative to where the app is mounted."""
        await principal(request)
        base = html.escape(request.scope.get("root_path", "").rstrip("/") + "/", quote=True)
        body = page.replace("{{BASE}}", base)
        headers = {**_SECURITY_HEADERS, "cache-control": "no-cache"}
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    async def static(request: Request) -> Response:
        """``GET /static/{name}``: the dashboard's script or style."""
        name: str = request.path_params["name"]
        if name not in files:
            raise ApiError("not_found", f"no static file {name!r}")
        return Response(
            files[name],
            media_type=_MEDIA_TYPES[name],
            headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"},
        )

    return [
        Route("/", answer_errors(dashboard), methods=["GET"]),
        Route("/static/{name}", answer_errors(static), methods=["GET"]),
    ]
