"""The HTTP API and the live dashboard of a :class:`~anyjob.JobManager` (extra ``anyjob[web]``).

``create_app(jobs)`` gives a Starlette app to mount in Starlette or FastAPI
(``app.mount("/jobs", create_app(jobs))``): JSON routes over the manager's jobs, a
Server-Sent Events stream of their events, ``/openapi.json``, and the dashboard at ``/``.
See ``docs/web.md``.
"""

from anyjob.web._app import Auth as Auth
from anyjob.web._app import create_app as create_app

__all__ = ["Auth", "create_app"]
