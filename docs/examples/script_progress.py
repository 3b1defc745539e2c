"""A script's own steps, shown live on stderr while stdout carries its result (for a pipe).

Run it: ``python docs/examples/script_progress.py > report.json``: the bars (or, not on a
terminal, plain lines) go to stderr, the JSON report to stdout. Each step is a tracked
block (``jobs.track``): a job with progress and a result, run in the script's own task.
It needs rich: ``pip install 'anyjob[cli]'``.
"""

from __future__ import annotations

import json
import sys

import anyio
from rich.console import Console

import anyjob
import anyjob.progress


async def main() -> None:
    rows: list[dict[str, int]] = []
    async with anyjob.JobManager() as jobs, anyjob.progress.show(jobs, console=Console(stderr=True)):
        async with jobs.track("fetch", {"pages": 5}) as ctx:
            for page in range(5):
                await anyio.sleep(0.02)  # a page of an API, say
                rows.extend({"page": page, "row": row} for row in range(10))
                ctx.set_progress((page + 1) / 5, f"page {page + 1} of 5")
            ctx.set_result(len(rows))

        async with jobs.track("check", {"rows": len(rows)}) as ctx:
            bad = 0
            for done, row in enumerate(rows, start=1):
                bad += row["row"] == 9
                if done % 10 == 0:
                    await anyio.sleep(0.005)
                    ctx.set_progress(done / len(rows), f"{done} rows checked")
            ctx.set_result(bad)

        stats = await jobs.stats()
    json.dump({"rows": len(rows), "flagged": bad, "steps": stats.total}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    anyjob.instrumentation.set_hooks([])  # the display says what happened
    anyio.run(main)
