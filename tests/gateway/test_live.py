"""The live demo traffic: caps, degradations and kills end up in the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailguard.gateway.live import run_live
from tailguard.ledger.store import Ledger


@pytest.mark.slow
def test_live_traffic_fills_the_ledger_with_real_decisions(tmp_path: Path) -> None:
    res = run_live(tmp_path / "live", customers=40, requests=400, concurrency=8, seed=3)
    assert sum(res.outcomes.values()) == 400
    assert res.outcomes["transport_error"] == 0
    con = Ledger(res.ledger).connect()
    try:
        calls = con.execute("SELECT count(*) FROM events WHERE kind = 'llm_call'").fetchone()[0]
        actions = dict(
            con.execute(
                "SELECT action, count(*) FROM events WHERE kind = 'guard' GROUP BY action"
            ).fetchall()
        )
    finally:
        con.close()
    # every call the clients saw answered by the provider is in the ledger
    assert calls == res.outcomes["ok"] + res.outcomes["degrade"]
    assert actions.get("deny", 0) > 0 and actions.get("kill", 0) > 0
    assert actions.get("degrade", 0) > 0
    assert res.outcomes["kill"] > 0 and res.outcomes["deny"] > 0
