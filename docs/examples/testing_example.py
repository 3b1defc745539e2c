"""Testing code that retries: no backoff waits, captured events.

Run it: ``python docs/examples/testing_example.py`` (it is also what a pytest test would do).
"""

from __future__ import annotations

import anyio

import anyjob
from anyjob import instrumentation
from anyjob.testing import capture_events, set_testing

attempts = 0


async def unreliable(ctx: anyjob.Context) -> str:
    global attempts
    attempts += 1
    if attempts < 3:
        msg = "try again"
        raise ConnectionError(msg)
    return "done"


async def main() -> None:
    global attempts
    # Delays of 10 minutes would make this take half an hour; testing mode drops them.
    executor = anyjob.Executor(anyjob.Job(unreliable), retry=anyjob.Retry(5, delay=600))
    with set_testing(True), capture_events() as events, anyio.fail_after(5):
        assert await executor.start() == "done"
    retries = [e for e in events if e.name == instrumentation.RETRY_SCHEDULED]
    print(f"{len(retries)} retries scheduled, waits {[e.wait for e in retries]}")
    assert [e.attempt for e in retries] == [1, 2]

    # Capping attempts: with attempts=1 nothing is retried at all.
    with set_testing(True, attempts=1):
        failing = anyjob.Executor(anyjob.Job(unreliable), retry=5)
        attempts = 0
        try:
            await failing.start()
        except ConnectionError:
            print("capped at", failing.stats().attempts, "attempt")


if __name__ == "__main__":
    instrumentation.set_hooks([])  # keep the output to what the example prints
    anyio.run(main)
