"""``anyjob serve``: the HTTP API and dashboard of a store's jobs, served with uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
from collections.abc import Generator
from typing import Any, Final

from anyjob._cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    closing,
    import_function,
    open_store,
    store_url,
)
from anyjob._cli._interrupt import Interrupts
from anyjob._cli._output import stderr
from anyjob._manager import JobManager
from anyjob.instrumentation import set_hooks

__all__ = ["Server", "make_server", "serve"]


def _web() -> tuple[Any, Any]:
    try:
        import uvicorn  # noqa: PLC0415 - an optional extra, only for serving

        from anyjob import web  # noqa: PLC0415
    except ImportError as exc:
        msg = f"serving needs the web extra: pip install 'anyjob[web]' ({exc})"
        raise CliError(msg) from None
    return uvicorn, web


class Server:
    """A uvicorn server of ``anyjob.web.create_app(jobs)``, run in the current (asyncio) event loop.

    Signals stay with the command line (:class:`~anyjob._cli._interrupt.Interrupts`):
    :meth:`stop` is how it ends.
    """

    def __init__(self, jobs: JobManager, host: str, port: int) -> None:
        uvicorn, web = _web()

        class _Quiet(uvicorn.Server):  # type: ignore[misc, name-defined]
            @contextlib.contextmanager
            def capture_signals(self) -> Generator[None]:
                yield  # Ctrl-C is the command line's: it stops the server through stop()

        config = uvicorn.Config(
            _only_for(host, web.create_app(jobs)),
            log_level="warning",
            timeout_graceful_shutdown=2,  # the event streams end when the manager closes, after this
            lifespan="off",
        )
        self._server: Any = _Quiet(config)
        self._socket = _listen(host, port)
        bound = self._socket.getsockname()
        shown = f"[{bound[0]}]" if self._socket.family == socket.AF_INET6 else bound[0]
        #: The address it serves on (the port chosen when 0 was asked for).
        self.url = f"http://{shown}:{bound[1]}/"

    async def run(self) -> None:
        """Serve until :meth:`stop`."""
        try:
            await self._server.serve(sockets=[self._socket])
        finally:
            self._socket.close()

    def stop(self) -> None:
        """Stop serving (open connections get a short grace period)."""
        self._server.should_exit = True


#: The names a server on a loopback address answers to (any other Host header: a page on a
#: rebound DNS name reaching this machine through the browser, refused with a 400).
_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "::1", "[::1]")


def _only_for(host: str, app: Any) -> Any:
    """*app*, answering only requests for a loopback address when it listens on one (DNS rebinding)."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return app  # listening for other machines: the names they use are not known here
    from starlette.middleware.trustedhost import TrustedHostMiddleware  # noqa: PLC0415 - the web extra

    return TrustedHostMiddleware(app, allowed_hosts=[*_LOOPBACK_NAMES, host])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on *host*:*port*, or a :class:`CliError` saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        msg = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise CliError(msg) from None


def make_server(jobs: JobManager, host: str, port: int) -> Server:
    """A :class:`Server` of *jobs* on *host*:*port*; :class:`CliError` without the web extra."""
    return Server(jobs, host, port)


async def serve(args: argparse.Namespace) -> int:
    """``anyjob serve``: serve the store's jobs until Ctrl-C (exit status 130 then)."""
    _web()  # before anything is made: a missing extra leaves no database file behind
    store = open_store(store_url(args), must_exist=False)
    functions = [import_function(target) for target in args.register or ()]
    set_hooks([])
    console = stderr()
    jobs = JobManager(store=store)
    for fn in functions:
        jobs.register(fn)  # before it opens: it may take their waiting jobs from the start
    with closing(store):
        async with jobs:
            server = make_server(jobs, args.host, args.port)

            async def graceful() -> None:
                server.stop()

            async with Interrupts(graceful, console, "stopping the server") as interrupts:
                console.print(f"anyjob: serving {store!r} on {server.url} (Ctrl-C to stop)")
                await server.run()
    return EXIT_INTERRUPTED if interrupts.interrupted else EXIT_OK
