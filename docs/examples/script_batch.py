"""A script submits many jobs, shows them live, retries the failures and prints a summary.

Run it: ``python docs/examples/script_batch.py`` (on a terminal, the bars redraw in place;
piped, the same news comes as plain lines). It needs rich: ``pip install 'anyjob[cli]'``.
"""

from __future__ import annotations

import random

import anyio

import anyjob
import anyjob.progress


async def thumbnail(ctx: anyjob.Context) -> dict[str, int]:
    """Pretend to make a thumbnail in three passes; one image in ten is corrupt."""
    for step in range(3):
        await anyio.sleep(random.uniform(0.005, 0.02))
        ctx.set_progress((step + 1) / 3, f"pass {step + 1} of 3")
    if ctx.params["image"] % 10 == 7:
        msg = f"image {ctx.params['image']} is corrupt"
        raise ValueError(msg)
    return {"image": ctx.params["image"], "bytes": 1024 + ctx.params["image"]}


async def main() -> None:
    async with anyjob.JobManager(max_concurrency=8) as jobs:
        async with anyjob.progress.show(jobs) as display:
            refs = [
                await jobs.submit(thumbnail, {"image": i}, name=f"image-{i}", labels={"batch": "2026-11"})
                for i in range(40)
            ]

            # Each job's info as it finishes (already finished ones first).
            failed = [
                info
                async for info in jobs.as_completed([ref.id for ref in refs], timeout=60)
                if info.state is anyjob.State.FAILED
            ]

            # Retry the failures once (they fail again here: the images really are corrupt).
            for info in failed:
                await jobs.retry(info.id)
            again = [info async for info in jobs.as_completed([info.id for info in failed], timeout=60)]

        # After the display: every line it had to print is out.
        console = display.console
        console.print(anyjob.progress.summary_table(again, title="Retried"))
        stats = await jobs.stats(labels={"batch": "2026-11"})
        console.print(
            f"{stats.total} jobs: {stats.by_state[anyjob.State.SUCCEEDED]} succeeded, "
            f"{stats.by_state[anyjob.State.FAILED]} failed; success rate {stats.success_rate:.0%}, "
            f"average {stats.average_duration * 1000:.1f} ms"
        )


if __name__ == "__main__":
    anyjob.instrumentation.set_hooks([])  # the display says what happened
    anyio.run(main)
