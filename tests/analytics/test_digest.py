"""The three digests on a ledger worked out by hand, and the webhook POST.

Customer A (pro, MRR 100), one user a1 on feature "search", model "big" (1,000 in + 100 out
tokens a call): $1.00 on each of Feb 1 .. 13 2026 and $6.00 on Feb 14.

daily, Feb 14: trailing Feb 7 .. 13 = [1] × 7, median 1: user a1, feature search, customer A
    all at 6.0×.
weekly, to Feb 14: this week Feb 8 .. 14 = 6 × 1 + 6 = 12, the week before Feb 1 .. 7 = 7;
    tier pro 100% of both weeks (shift +0.0 pts); p90 user this week $12.00;
    cost to ARR for the week: 12 / (100 × 7 / 30.436875) = 52.2% > 20%: 1 above 12%, 1 above 20%.
quarterly, to Feb 14: Dec .. Feb (vs Sep .. Nov): spend 13 + 6 = 19 over 14 calls × 1,100
    tokens = 15,400: 19 / 15,400 × 10^6 = $1,233.7662 per million tokens; nothing last quarter.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from tailguard.analytics.digest import digest, post
from tailguard.cli import run
from tailguard.errors import ArgumentError, ConfigError
from tailguard.ledger import Ledger
from tests.analytics.helpers import Events, make_ledger

DAY = dt.date(2026, 2, 14)


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    e = Events()
    for d in range(1, 14):
        e.llm("A", "a1", f"2026-02-{d:02d}T12:00:00Z", "1.00", feature="search")
    e.llm("A", "a1", "2026-02-14T12:00:00Z", "6.00", feature="search")
    return make_ledger(tmp_path_factory.mktemp("digest"), e.rows, "A,A,pro,smb,100,1,,2025-01-01\n")


def _run(led: Ledger, rhythm: str) -> dict[str, Any]:
    con = led.connect()
    try:
        return digest(con, rhythm, day=DAY)
    finally:
        con.close()


def test_daily_by_hand(led: Ledger) -> None:
    d = _run(led, "daily")
    md = d["markdown"]
    assert md.startswith("## Daily cost scan — 2026-02-14")
    assert "| user | a1 | A | $6.00 | $1.00 | 6.0× |" in md
    assert "| feature | search | — | $6.00 | $1.00 | 6.0× |" in md
    assert "| customer | A | — | $6.00 | $1.00 | 6.0× |" in md
    assert "| a1 | A | $6.00 | $5.00 |" in md  # top users, delta vs Feb 13


def test_weekly_by_hand(led: Ledger) -> None:
    d = _run(led, "weekly")
    md = d["markdown"]
    assert d["period"] == [dt.date(2026, 2, 8), DAY]
    assert "| pro | $12.00 | $7.00 | +0.0 pts |" in md
    assert "| this | $12.00 | $12.00 | 1 |" in md
    assert d["data"]["cost_to_arr_over_12"] == 1 and d["data"]["cost_to_arr_over_20"] == 1
    assert "| A | pro | 52.2 |" in md


def test_quarterly_by_hand(led: Ledger) -> None:
    d = _run(led, "quarterly")
    assert d["period"] == [dt.date(2025, 12, 1), dt.date(2026, 2, 1)]
    (m,) = d["data"]["models"]
    assert (m["model"], m["this_usd"]) == ("big", Decimal("19"))
    # 19 / 15,400 tokens x 1e6 = 1233.766233... in data (every digit); 4 places in the markdown
    assert m["this_usd_per_mtok"] == pytest.approx(19 / 15_400 * 1e6, rel=1e-15)
    assert m["prev_usd_per_mtok"] is None
    assert "| big | $19.00 | 1233.7662 | — |" in d["markdown"]


def test_unknown_rhythm(led: Ledger) -> None:
    con = led.connect()
    try:
        with pytest.raises(ConfigError):
            digest(con, "hourly")
    finally:
        con.close()
    with pytest.raises(ArgumentError, match="webhook"):  # a bad argument: exit 2 from the CLI
        post("ftp://example.com", {"markdown": "x"})


def test_webhook_post(led: Ledger, capsys: pytest.CaptureFixture) -> None:
    import tailguard.cli.panel  # noqa: F401

    got: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers["Content-Length"])
            got.append(json.loads(self.rfile.read(n)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.handle_request, daemon=True)
    t.start()
    url = f"http://127.0.0.1:{srv.server_port}/hook"
    argv = ["digest", "daily", "--ledger", str(led.path), "--day", "2026-02-14"]
    assert run([*argv, "--webhook", url, "--json"]) == 0
    t.join(5)
    srv.server_close()
    rep = json.loads(capsys.readouterr().out)
    assert rep["webhook_status"] == 200
    assert got == [{"text": rep["markdown"]}]
    assert run(["digest", "hourly", "--ledger", str(led.path)]) == 2
    assert run(["digest", "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_weekly_tier_utilization_by_hand(led: Ledger) -> None:
    """With the policy of test_kpis (pro: $28 a month): Feb 1 .. 14 used 13 + 6 = 19 = 67.86%;
    pace 19 / 14 a day -> 38 at month end = 135.71%; cap projected on day ceil(28 / (19/14)) =
    21 (not yet hit). Without a policy the section says unknown."""
    from tailguard.guard.policy import parse_policy
    from tests.analytics.helpers import POLICY

    con = led.connect()
    try:
        d = digest(con, "weekly", day=DAY, policy=parse_policy(POLICY))
    finally:
        con.close()
    assert "| pro | 1 | 67.86 | 135.71 | 0 | 1 |" in d["markdown"]
    assert "_unknown: no policy" in _run(led, "weekly")["markdown"]


def test_utilization_counts_customers_without_a_row(tmp_path: Any) -> None:
    """X1 has events but no customers row: the guard gives it the policy's default tier (free,
    a $1 monthly hard limit), so the digest's utilization counts it there, as the panel does:
    $3 spent of $1 = 300%. It was dropped (no free row at all)."""
    from tailguard.analytics.context import using
    from tailguard.analytics.digest import _utilization
    from tailguard.guard.policy import parse_policy
    from tests.analytics.helpers import POLICY, day

    e = Events()
    e.llm("T1", "t1u", day(2), "10")
    e.llm("X1", "x1u", day(2), "3")
    led = make_ledger(tmp_path, e.rows, "T1,T1,team,mid_market,500,5,100,2025-01-01\n")
    with using(led) as ctx:
        tiers = {t["tier"]: t for t in _utilization(ctx, dt.date(2026, 2, 2), parse_policy(POLICY))}
    assert (tiers["free"]["customers"], tiers["free"]["median_actual_pct"]) == (1, 300.0)
