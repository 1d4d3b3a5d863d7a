"""The live demo traffic: caps, degradations and kills end up in the ledger, at the right places."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tailguard.gateway.live import run_live
from tailguard.ledger.store import Ledger


def _guard_rows(ledger: Path) -> list[tuple[str, str, str, str | None]]:
    con = Ledger(ledger).connect()
    try:
        return con.execute(
            "SELECT action, rule, customer_id, session_id FROM events WHERE kind = 'guard'"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_live_traffic_fills_the_ledger_with_real_decisions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Limits fitted to the traffic: only the runaway agent loops are killed (each logged once,
    not once per refused request), a minority of customers meet their cap, most calls go
    through; every call the clients saw answered is in the run's own ledger."""
    caplog.set_level(logging.WARNING, logger="tailguard.guard")
    res = run_live(tmp_path / "live", customers=120, requests=1200, concurrency=8, seed=3)
    assert res.ledger == (tmp_path / "live" / "ledger").resolve()
    assert sum(res.outcomes.values()) == 1200
    assert res.outcomes["transport_error"] == 0
    con = Ledger(res.ledger).connect()
    try:
        calls, customers = con.execute(
            "SELECT count(*) FILTER (WHERE kind = 'llm_call'), count(DISTINCT customer_id) "
            "FROM events"
        ).fetchone()
    finally:
        con.close()
    # every call the clients saw answered by the provider is in the ledger
    assert calls == res.outcomes["ok"] + res.outcomes["degrade"]
    rows = _guard_rows(res.ledger)
    killed = {s for a, r, _c, s in rows if a == "kill"}
    assert killed and all(s is not None and s.endswith("-loop") for s in killed)
    # refusals of a killed session are logged as guard events, the warning once per session
    warnings = [r for r in caplog.records if "killed session" in r.getMessage()]
    assert len(warnings) == len(killed)
    capped = {c for a, r, c, _s in rows if a == "deny" and r == "hard_limit"}
    assert 0 < len(capped) <= 0.25 * customers
    assert any(a == "degrade" for a, *_ in rows)
    assert res.outcomes["ok"] >= 0.6 * 1200
    assert res.outcomes["kill"] <= 0.1 * 1200


@pytest.mark.slow
def test_live_rerun_starts_from_a_clean_ledger(tmp_path: Path) -> None:
    """A second run into the same folder shows that run only, not the sum of both."""
    run_live(tmp_path / "live", customers=20, requests=120, concurrency=4, seed=5)
    second = run_live(tmp_path / "live", customers=20, requests=120, concurrency=4, seed=5)
    con = Ledger(second.ledger).connect()
    try:
        calls = con.execute("SELECT count(*) FROM events WHERE kind = 'llm_call'").fetchone()[0]
    finally:
        con.close()
    assert calls == second.outcomes["ok"] + second.outcomes["degrade"]  # not twice as many


@pytest.mark.slow
def test_demo_live_writes_its_own_ledger(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`tailguard demo --live` beside a plain demo: OUT/live/ledger, never OUT/ledger."""
    import json

    from tailguard.cli import run

    out = tmp_path / "demo"
    argv = ["demo", "--live", "--out", str(out), "--customers", "20", "--requests", "100"]
    assert run([*argv, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert Path(got["ledger"]) == (out / "live" / "ledger").resolve()
    assert not (out / "ledger").exists()


@pytest.mark.slow
def test_live_demo_ignores_the_users_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment overrides a gateway's config file (docs/configuration.md), but the live
    demo is a sandbox: with TAILGUARD_LEDGER, _POLICY, _PRICES and _REDIS_URL pointing at a
    user's real setup, it still writes only its own ledger under its own policy, and leaves the
    user's ledger directory untouched (here: never created)."""
    users = tmp_path / "users-ledger"
    monkeypatch.setenv("TAILGUARD_LEDGER", str(users))
    monkeypatch.setenv("TAILGUARD_POLICY", str(tmp_path / "users-policy.toml"))
    monkeypatch.setenv("TAILGUARD_PRICES", str(tmp_path / "users-prices.toml"))
    monkeypatch.setenv("TAILGUARD_REDIS_URL", "redis://127.0.0.1:1/0")
    res = run_live(tmp_path / "live", customers=10, requests=40, concurrency=2, seed=9)
    assert res.ledger == (tmp_path / "live" / "ledger").resolve()
    assert not users.exists()
    con = Ledger(res.ledger).connect()
    try:
        calls = con.execute("SELECT count(*) FROM events WHERE kind = 'llm_call'").fetchone()[0]
    finally:
        con.close()
    assert calls == res.outcomes["ok"] + res.outcomes["degrade"] > 0
