"""A script submits many jobs, awaits them all, and prints a summary.

Run it: ``python docs/examples/script_batch.py``
"""

from __future__ import annotations

import random

import anyio

import anyjob


async def thumbnail(ctx: anyjob.Context) -> dict[str, int]:
    """Pretend to make a thumbnail; one in ten images is corrupt."""
    await anyio.sleep(random.uniform(0.005, 0.02))
    if ctx.params["image"] % 10 == 7:
        msg = f"image {ctx.params['image']} is corrupt"
        raise ValueError(msg)
    return {"image": ctx.params["image"], "bytes": 1024 + ctx.params["image"]}


async def main() -> None:
    async with anyjob.JobManager(max_concurrency=8) as jobs:
        refs = [await jobs.submit(thumbnail, {"image": i}, labels={"batch": "2026-11"}) for i in range(40)]

        failed: list[anyjob.JobInfo] = []
        # Each job's info as it finishes (already finished ones first).
        async for info in jobs.as_completed([ref.id for ref in refs], timeout=60):
            if info.state is anyjob.State.FAILED:
                print(f"failed: image {info.params['image']}: {info.error_type}: {info.error}")
                failed.append(info)

        # Retry the failures once (they fail again here: the images really are corrupt).
        for info in failed:
            await jobs.retry(info.id)
        for info in failed:
            again = await jobs.wait(info.id)
            assert again is not None
            image = again.params["image"]
            print(f"retried: image {image} -> {again.state.value} after {again.attempts} attempts")

        stats = await jobs.stats(labels={"batch": "2026-11"})
        print(
            f"{stats.total} jobs: {stats.by_state[anyjob.State.SUCCEEDED]} succeeded, "
            f"{stats.by_state[anyjob.State.FAILED]} failed; success rate {stats.success_rate:.0%}, "
            f"average {stats.average_duration * 1000:.1f} ms"
        )


if __name__ == "__main__":
    anyjob.instrumentation.set_hooks([])  # the script prints its own summary
    anyio.run(main)
