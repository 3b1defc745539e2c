"""How a manager writes to a store it reaches only through the async protocol: batched, coalesced."""

from __future__ import annotations

import anyio.lowlevel
import pytest
from tests.manager.support import MakeStore

from anyjob import Context, JobManager, State
from conftest import DelegatingStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("silent")]


async def test_writes_to_a_protocol_store_are_coalesced(make_store: MakeStore) -> None:
    async def chatty(ctx: Context) -> None:
        for i in range(1, 501):
            ctx.set_progress(i / 500)
            if i % 50 == 0:
                await anyio.lowlevel.checkpoint()

    store = DelegatingStore(make_store())  # counts the batches, whatever store is behind it
    async with JobManager(store) as jobs:
        ref = await jobs.submit(chatty)
        info = await jobs.wait(ref.id)
        assert info is not None
        assert (info.state, info.progress) == (State.SUCCEEDED, 1.0)
        assert store.batches < 50  # 500 reports, a few batches
