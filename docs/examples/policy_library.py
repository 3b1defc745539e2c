"""A library composes its retry policy once and applies it to many functions and jobs.

Run it: ``python docs/examples/policy_library.py``
"""

from __future__ import annotations

import random

import anyio

import anyjob

# One place decides how this library talks to the network: 4 tries, exponential
# backoff from 50 ms with up to 20 ms of jitter, only for connection problems,
# and 2 s per try.
NETWORK = anyjob.Policy(
    retry=anyjob.Retry(4, delay=0.05, backoff=2.0, max_delay=1.0, jitter=0.02, on=ConnectionError),
    timeout=2.0,
)

_calls = {"fetch": 0}


@NETWORK
async def fetch(ctx: anyjob.Context) -> str:
    """Each call of ``fetch(url)`` runs as a fresh job under NETWORK."""
    _calls["fetch"] += 1
    await anyio.sleep(0.01)
    if _calls["fetch"] < 3:  # the first two calls hit a flaky connection
        msg = "connection reset by peer"
        raise ConnectionError(msg)
    return f"<html for {ctx.params}>"


async def resize(ctx: anyjob.Context) -> tuple[int, int]:
    """A plain job function; the policy is applied from outside."""
    await anyio.sleep(random.random() / 100)
    width, height = ctx.params
    return width // 2, height // 2


async def main() -> None:
    page = await fetch("https://example.org")  # retried twice, then succeeds
    print("fetched:", page)

    # The decorated function is not itself a job function (retries would nest); its
    # undecorated function and its policy are, for tracking the job yourself.
    try:
        anyjob.Job(fetch)
    except TypeError as exc:
        print("refused:", exc)
    tracked = NETWORK.executor(fetch.fn, name="fetch, tracked")  # fetch.fn is fetch.__wrapped__
    print(
        "fetched again:",
        await tracked.start("https://example.org/about"),
        tracked.stats().attempts,
        "attempt(s)",
    )

    # A long-lived executor from the same policy, with a cooldown on top.
    thumbnails = anyjob.Policy(retry=NETWORK.retry, timeout=NETWORK.timeout, cooldown=0.1).executor(
        resize, name="thumbnail", labels={"kind": "image"}
    )
    print("resized:", await thumbnails.start((640, 480)))
    try:
        await thumbnails.start((800, 600))
    except anyjob.CooldownError as exc:
        print(f"refused: {exc} (remaining {exc.remaining:.2f} s)")
    print(thumbnails.stats())


if __name__ == "__main__":
    anyjob.instrumentation.set_hooks([])  # this example prints its own output
    anyio.run(main)
