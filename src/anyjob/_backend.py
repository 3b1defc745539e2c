"""The running async backend, asked cheaply: its name, and a cancel scope made without dispatch.

:class:`~anyjob.Job` makes a cancel scope every run, and the manager and
:mod:`anyjob._checkpoint` choose their backend's own calls once: these are the
helpers they share (re-exported by :mod:`anyjob._job`, where they used to live).
"""

from __future__ import annotations

import anyio

__all__ = ["current_async_library", "new_cancel_scope"]

try:
    from sniffio import current_async_library as _sniffio_library
except ImportError:  # pragma: no cover - anyio runs without sniffio on asyncio only

    def current_async_library() -> str:
        """The name of the running async library: always ``"asyncio"`` without sniffio."""
        return "asyncio"

else:

    def current_async_library() -> str:
        """The name of the running async library (``"asyncio"`` or ``"trio"``), as sniffio says."""
        return _sniffio_library()


_scope_classes: dict[str, type[anyio.CancelScope]] = {}


def new_cancel_scope() -> anyio.CancelScope:
    """``anyio.CancelScope()`` without anyio's per-call backend dispatch.

    ``anyio.CancelScope()`` looks the backend up and then initialises the backend's
    scope twice; calling the backend's class directly halves the cost of the
    scope every run needs (see ``benchmarks/bench_job.py``). The class is found
    the public way, once per backend.
    """
    library = current_async_library()
    cls = _scope_classes.get(library)
    if cls is None:
        cls = _scope_classes[library] = type(anyio.CancelScope())
    return cls()
