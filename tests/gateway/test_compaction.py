"""The gateway's log commits a segment per flush; its flusher merges them (compaction)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tailguard.gateway import app as gateway_app
from tailguard.ledger import Ledger
from tests.gateway.conftest import Env
from tests.gateway.helpers import oa


def test_flusher_compacts_small_segments(
    make_env: Callable[..., Env], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six calls, each flushed into its own segment (flush interval 0.2 s); with compaction
    due at every flush, the ledger ends with fewer live segments than flushes, and exactly the
    six calls."""
    monkeypatch.setattr(gateway_app, "COMPACT_EVERY_S", 0.0)
    env = make_env()

    async def main() -> None:
        c = oa(env)
        for i in range(6):
            await c.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"call {i}"}],
                max_tokens=3,
            )
            await asyncio.sleep(0.5)  # a flush (and a compaction) between calls
        await env.close()

    asyncio.run(main())
    led = Ledger(env.gw.cfg.ledger)
    on_disk = list(led.segments_dir.glob("*.parquet"))
    assert len(led.segment_files()) < len(on_disk)  # merged: the sources are superseded
    assert len(env.events()) == 6
    assert sorted(e["output_tokens"] for e in env.events()) == [3] * 6
