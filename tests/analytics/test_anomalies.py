"""The daily anomaly scan against a ledger worked out by hand.

Day D = 2026-02-10; the trailing window is Feb 3 .. Feb 9 (7 days, zero days included).

    user A/a1 (search)  $1 on each of Feb 3..9, $6.00 on D   median 1  ratio 6.0   flagged
                        + $100 on Feb 2 (outside the trailing 7 days: ignored)
    user A/a2 (chat)    $2 on Feb 3, 4, 5, nothing Feb 6..9, $2.00 on D
                        daily totals [2, 2, 2, 0, 0, 0, 0] -> median 0: no baseline (listed
                        apart). Counting only active days the median would be 2 and the
                        ratio 1 — the zero days matter.
    user B/b1 (search)  $1 each day, $5.00 on D              ratio 5.0 (inclusive) flagged
    user B/b2 (chat)    $1 each day, $4.99 on D              ratio 4.99            not flagged
    an event on Feb 11 (after D): ignored.
Customers: A  [3, 3, 3, 1, 1, 1, 1] median 1, D 8.00      ratio 8.0            flagged
           B  [2] × 7 median 2, D 9.99                    ratio 4.995 < 5     not flagged
Features:  search [2] × 7 median 2, D 11.00               ratio 5.5            flagged
           chat   [3, 3, 3, 1, 1, 1, 1] median 1, D 6.99  ratio 6.99           flagged
Sorted by ratio: customer A 8.0, feature chat 6.99, user a1 6.0, feature search 5.5, user b1 5.0.
Top users by 24h spend: a1 6.00 (Feb 9: 1, delta +5), b1 5.00 (+4), b2 4.99 (+3.99), a2 2.00
(+2). Top features: search 11.00 (prev 2, +9), chat 6.99 (prev 1, +5.99).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.analytics.anomalies import anomalies
from tailguard.cli import run
from tailguard.errors import ConfigError, NoDataError
from tailguard.ledger import Ledger
from tests.analytics.helpers import Events, connect, make_ledger

D = dt.date(2026, 2, 10)


def _ts(d: int, h: int = 12) -> str:
    return f"2026-02-{d:02d}T{h:02d}:00:00Z"


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    e = Events()
    for d in range(3, 10):
        e.llm("A", "a1", _ts(d), "1.00", feature="search")
        e.llm("B", "b1", _ts(d), "1.00", feature="search")
        e.llm("B", "b2", _ts(d), "1.00", feature="chat")
    for d in (3, 4, 5):
        e.llm("A", "a2", _ts(d), "2.00", feature="chat")
    e.llm("A", "a1", _ts(2), "100.00", feature="search")
    e.llm("A", "a1", _ts(10, 0), "6.00", feature="search")
    e.llm("A", "a2", _ts(10, 23), "2.00", feature="chat")
    e.llm("B", "b1", _ts(10), "5.00", feature="search")
    e.llm("B", "b2", _ts(10), "4.99", feature="chat")
    e.llm("A", "a1", _ts(11), "50.00", feature="search")
    csv = "A,A,pro,smb,100,2,,2025-01-01\nB,B,team,mid_market,500,5,,2025-01-01\n"
    return make_ledger(tmp_path_factory.mktemp("anom"), e.rows, csv)


def _scan(led: Ledger, **kw: Any) -> dict[str, Any]:
    con = led.connect()
    try:
        return anomalies(con, day=D, **kw)
    finally:
        con.close()


def test_rule_by_hand(led: Ledger) -> None:
    rep = _scan(led)
    got = [
        (a["entity_type"], a["entity_id"], a["spend_24h_usd"], a["trailing_median_usd"], a["ratio"])
        for a in rep["anomalies"]
    ]
    assert got == [
        ("customer", "A", Decimal("8"), Decimal("1"), 8.0),
        ("feature", "chat", Decimal("6.99"), Decimal("1"), 6.99),
        ("user", "a1", Decimal("6"), Decimal("1"), 6.0),
        ("feature", "search", Decimal("11"), Decimal("2"), 5.5),
        ("user", "b1", Decimal("5"), Decimal("1"), 5.0),
    ]
    assert rep["anomalies"][2]["customer_id"] == "A"
    assert set(rep["anomalies"][0]) >= {
        "entity_type",
        "entity_id",
        "spend_24h_usd",
        "trailing_median_usd",
        "ratio",
    }
    assert rep["trailing_days"] == [dt.date(2026, 2, 3), dt.date(2026, 2, 9)]


def test_zero_days_count_in_the_median(led: Ledger) -> None:
    rep = _scan(led)
    nb = [(r["entity_type"], r["entity_id"], r["ratio"]) for r in rep["no_baseline"]]
    assert nb == [("user", "a2", None)]
    assert rep["no_baseline_count"] == 1


def test_threshold_is_inclusive_and_configurable(led: Ledger) -> None:
    ids = {a["entity_id"] for a in _scan(led, threshold=4.99)["anomalies"]}
    assert {"b2", "B"} <= ids  # 4.99 >= 4.99 × 1; B: 9.99 >= 4.99 × 2
    ids = {a["entity_id"] for a in _scan(led, threshold=8.0)["anomalies"]}
    assert ids == {"A"}
    with pytest.raises(ConfigError):
        _scan(led, threshold=0)


def test_top_lists_by_hand(led: Ledger) -> None:
    rep = _scan(led)
    assert [(u["entity_id"], u["spend_24h_usd"], u["delta_usd"]) for u in rep["top_users"]] == [
        ("a1", Decimal("6"), Decimal("5")),
        ("b1", Decimal("5"), Decimal("4")),
        ("b2", Decimal("4.99"), Decimal("3.99")),
        ("a2", Decimal("2"), Decimal("2")),
    ]
    assert [(f["entity_id"], f["prev_day_usd"], f["delta_usd"]) for f in rep["top_features"]] == [
        ("search", Decimal("2"), Decimal("9")),
        ("chat", Decimal("1"), Decimal("5.99")),
    ]


def test_cli(led: Ledger, capsys: pytest.CaptureFixture) -> None:
    import tailguard.cli.panel  # noqa: F401

    argv = ["anomalies", "--ledger", str(led.path), "--day", "2026-02-10"]
    assert run([*argv, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [a["entity_id"] for a in rep["anomalies"]] == ["A", "chat", "a1", "search", "b1"]
    assert run(argv) == 0
    assert "Anomalies on 2026-02-10" in capsys.readouterr().out
    assert run([*argv, "--threshold", "0"]) == 2
    assert run(["anomalies", "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_default_day_is_the_last_events(led: Ledger, tmp_path: Path) -> None:
    con = led.connect()
    try:
        assert anomalies(con)["day"] == dt.date(2026, 2, 11)
    finally:
        con.close()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([0, 0, 1, 2, 3, 5, 40]), min_size=8, max_size=8),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([2.0, 3.0, 5.0]),
)
def test_against_a_python_reference(days: list[list[int]], threshold: float) -> None:
    """Each user's 8 daily spends (Feb 3 .. Feb 10, 0 = no event): the median of the first 7
    zero-filled, and the rule, recomputed in Python, match the engine's."""
    rows = []
    for u, spends in enumerate(days):
        for d, c in enumerate(spends):
            if c:
                rows.append(
                    {
                        "event_id": f"p{u}-{d}",
                        "kind": "llm_call",
                        "ts": f"2026-02-{3 + d:02d}T06:00:00+00:00",
                        "customer_id": f"C{u}",
                        "user_id": f"u{u}",
                        "feature": f"f{u}",
                        "cost_usd": c,
                    }
                )
    if not rows:
        return
    con = connect(rows)
    try:
        if not any(spends[7] for spends in days):
            # no event on the scanned day: nothing was measured, which is not "no anomaly"
            with pytest.raises(NoDataError, match=r"no events in 2026-02-10 \.\. 2026-02-10"):
                anomalies(con, day=D, threshold=threshold)
            return
        rep = anomalies(con, day=D, threshold=threshold)
    finally:
        con.close()
    flagged = {(a["entity_type"], a["entity_id"]) for a in rep["anomalies"]}
    for u, spends in enumerate(days):
        med = statistics.median(spends[:7])
        want = med > 0 and spends[7] >= threshold * med
        # a user's customer and feature are its own: the same series three times
        for key in (("user", f"u{u}"), ("customer", f"C{u}"), ("feature", f"f{u}")):
            assert (key in flagged) == want
        if want:
            a = next(a for a in rep["anomalies"] if a["entity_id"] == f"u{u}")
            assert a["trailing_median_usd"] == Decimal(str(med))
            assert a["ratio"] == pytest.approx(spends[7] / med, rel=1e-15)  # every digit


def test_an_unjudged_tier_is_not_out_of_band(tmp_path: Path) -> None:
    """X1 has no customers row and there is no policy: its tier ``unknown`` has no rate and
    no band (status ``unknown``), so it is not listed as out of band; team T1, at 0% of its
    5-15% band, is (``watch``)."""
    from tests.analytics.helpers import day

    e = Events()
    e.llm("T1", "t1u", day(2), "0.10")
    e.llm("X1", "x1u", day(2), "0.10")
    led = make_ledger(tmp_path, e.rows, "T1,T1,team,mid_market,500,5,100,2025-01-01\n")
    out = anomalies(led, day=dt.date(2026, 2, 2))["tiers_out_of_band"]
    assert [(t["tier"], t["status"]) for t in out] == [("team", "watch")]
