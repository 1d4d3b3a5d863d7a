"""decide: the figures the mutation run of ``analytics/decide.py`` found untested (issue 19).

Each test names the mutant it catches (``scripts/mutation tailguard/analytics/decide.py --match
...``) and was checked to fail against it. Figures are worked out by hand in each docstring.

The hand config (as in test_decide.py): hourly rate 100, lifetime 20 months (engineering = 5 a
month per hour), three levers in this order:

    A  fix  uplift 0.5  probability 0.8  2 h
    B  cap  uplift 0.5  probability 0.5  1 h
    C  fix  uplift 0.1  probability 0.5  4 h
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from tailguard.analytics.decide import DecideConfig, LeverCost, decide, plan
from tailguard.analytics.period import Window, window
from tailguard.errors import ConfigError, NoDataError
from tests.analytics.helpers import Events, make_ledger

D = Decimal
CFG = DecideConfig(
    lifetime_months=D(20),
    hourly_rate_usd=D(100),
    levers={
        "A": LeverCost("fix", D("0.5"), D("0.8"), D(2)),
        "B": LeverCost("cap", D("0.5"), D("0.5"), D(1)),
        "C": LeverCost("fix", D("0.1"), D("0.5"), D(4)),
    },
)
KEYS = ["A", "B", "C"]


def test_the_default_config_by_hand() -> None:
    """The defaults (docs/panel.md: lifetime 24 months, 150 an hour, a price increase of at most
    50%), no lever. Cost 150 against a price of 100: margin -50, a lifetime of -50 × 24 = -1200;
    the increase that closes the gap is 50 / 100 = 50%, at the bound: reprice. Cost 150.5: 50.5%
    is over it and nothing else closes the gap: offboard.

    Catches ``24 -> 23`` / ``24 -> 25 @ lifetime_months``, ``50 -> 49`` / ``50 -> 51 @
    max_price_increase_pct``."""
    r = plan(D(150), D(100), [], DecideConfig())
    assert (r["recommendation"], r["price_increase_needed_pct"]) == ("reprice", D(50))
    assert r["lifetime_months"] == D(24)
    assert r["lifetime_value_usd"]["as_is"] == D(-1200)
    r = plan(D("150.5"), D(100), [], DecideConfig())
    assert (r["recommendation"], r["price_increase_needed_pct"]) == ("offboard", D("50.5"))


#: each default lever's hours (docs/panel.md points at LEVER_DEFAULTS) and, by hand, its
#: engineering a month at the defaults: hours × 150 / 24 = hours × 6.25
DEFAULT_ENGINEERING = {
    "fresh_task_ux": (40, "250"),
    "context_truncation": (24, "150"),
    "prompt_caching": (16, "100"),
    "tool_fix": (40, "250"),
    "token_aware_ui": (24, "150"),
    "prompt_optimization": (16, "100"),
    "retrieval_tool_fix": (40, "250"),
    "cache_aware_ux": (24, "150"),
    "feature_cache": (24, "150"),
    "model_cascade": (24, "150"),
    "step_ceiling": (8, "50"),
    "prompt_ceiling": (4, "25"),
    "retry_budget": (4, "25"),
    "tenant_cap": (4, "25"),
    "rate_limit": (4, "25"),
    "reasoning_budget": (4, "25"),
    "usage_pricing": (16, "100"),
    "repricing": (8, "50"),
}


@pytest.mark.parametrize(
    ("lever", "hours", "eng"), [(k, *v) for k, v in DEFAULT_ENGINEERING.items()]
)
def test_each_default_lever_costs_its_hours(lever: str, hours: int, eng: str) -> None:
    """A default lever's engineering a month is its hours × 150 / 24 (the table above): a lever
    that took an hour more or less would be judged against another bar. Catches every ``N -> N±1``
    on a LEVER_DEFAULTS row."""
    (lv,) = plan(D(1000), D(2000), [lever], DecideConfig())["levers"]
    assert lv["hours"] == hours
    assert lv["engineering_per_month_usd"] == D(eng)


def test_the_documented_arithmetic_line() -> None:
    """docs/panel.md's example line, at the defaults: tenant_cap (cap, uplift 0.40, probability
    0.9, 4 h) on a monthly cost of 74.55: saving 74.55 × 0.40 × 0.9 = 26.838 (shown 26.84) >
    engineering 4 × 150 / 24 = 25: applied. Catches the default hours of tenant_cap, the hourly
    rate and lifetime, and a ``$`` in the arithmetic lines (``False -> True @ format_usd``)."""
    r = plan(D("74.55"), D(100), ["tenant_cap"], DecideConfig())
    assert (
        "tenant_cap (cap): saving 74.55 × 0.40 × 0.9 = 26.84 vs engineering 4 h × 150 / 24 = "
        "25.00 a month: applied"
    ) in r["arithmetic"]
    (lv,) = r["levers"]
    assert (lv["expected_monthly_saving_usd"], lv["applied"]) == (D("26.838"), True)


def test_the_configs_are_frozen() -> None:
    """One config judges every customer of a run (the CLI loads it once): neither it nor a
    lever can be changed in place, only replaced (``dataclasses.replace``). Catches ``True ->
    False @ @dataclass(frozen=True)`` on both classes."""
    cfg = DecideConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lifetime_months = D(6)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.levers["tool_fix"].hours = D(1)  # type: ignore[misc]


def test_a_margin_of_exactly_zero_is_within_the_price() -> None:
    """Cost 100, price 100: margin 0, kept because the cost is within the price (not because of
    a lever: there is none). Catches ``0 -> 1 @ elif margin >= 0`` (0 >= 1 is false, and the
    next rule would keep it for "the fix levers")."""
    r = plan(D(100), D(100), [], CFG)
    assert (r["recommendation"], r["reason"]) == ("keep", "cost to serve is within the price paid")
    assert r["price_increase_needed_pct"] is None


def test_a_price_under_a_dollar_can_still_be_raised() -> None:
    """Price 1, cost 1.5, no lever: margin -0.5, increase 0.5 / 1 = 50% <= 50%: reprice. Catches
    ``0 -> 1 @ need_pct = ... if mp > 0`` (1 > 1 is false: no increase, and it would fall to
    offboard)."""
    r = plan(D("1.5"), D(1), [], replace(CFG, max_price_increase_pct=D(50)))
    assert (r["recommendation"], r["price_increase_needed_pct"]) == ("reprice", D(50))


def test_fix_and_cap_levers_that_close_the_gap_exactly() -> None:
    """Cost 100, price 60, max increase 10%. A (fix) saves 100 × 0.5 × 0.8 = 40 > 10: applied,
    fix and cap pools 60. B (cap) saves 60 × 0.5 × 0.5 = 15 > 5: applied, cap pool 45. C (fix)
    saves 60 × 0.1 × 0.5 = 3 < 20: not applied. After fix: 60 - 60 - 2 h × 5 = -10, an increase
    of 10 / 60 = 16.67% > 10%. After fix + cap: 60 - 45 - 3 h × 5 = 0: the gap is closed
    exactly, so cap. Catches ``>= -> > @ elif margin_cap >= 0`` (offboard)."""
    r = plan(D(100), D(60), KEYS, replace(CFG, max_price_increase_pct=D(10)))
    assert r["monthly_margin_after_fix_usd"] == D(-10)
    assert r["monthly_margin_after_cap_usd"] == D(0)
    assert (r["recommendation"], r["reason"]) == ("cap", "fix + cap levers close the gap")


@pytest.fixture(scope="module")
def two_customers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """D1 (pro, smb, MRR 100): $60.00 on Feb 1 and $40.00 on Feb 15. D2 (team, enterprise, MRR
    999): $5.00 on Feb 20, the ledger's last event. D3: $7.00 on Feb 10, no customers row."""
    e = Events()
    e.llm("D1", "u", "2026-02-01T09:00:00Z", "60.00")
    e.llm("D1", "u", "2026-02-15T09:00:00Z", "40.00")
    e.llm("D3", "w", "2026-02-10T09:00:00Z", "7.00")
    e.llm("D2", "v", "2026-02-20T09:00:00Z", "5.00")
    csv = "D1,D1,pro,smb,100,1,,2025-01-01\nD2,D2,team,enterprise,999,3,,2025-01-01\n"
    return make_ledger(tmp_path_factory.mktemp("decide"), e.rows, csv).path


def test_a_part_month_window_by_hand(two_customers: Path) -> None:
    """D1 over Feb 1 .. 15 (15 days): months = 15 / 30.436875 = 15 × 4800 / 146097 =
    72000 / 146097 (30.436875 = 365.2425 / 12 = 146097 / 4800). Cost 100: monthly cost
    100 × 146097 / 72000 = 202.9125; price paid 100 × 72000 / 146097 = 49.2823... Tier, segment
    and MRR are D1's own row (pro, smb, 100), not D2's. Its last event is Feb 15, the ledger's
    Feb 20: quiet for 5 days. Margin 100 - 202.9125 = -102.9125, an increase of 102.9125% > 50%
    and no lever (two calls are too few to diagnose): offboard.

    Catches ``/ -> * @ mc = cost / months``, ``* -> / @ "price_paid_usd": mp * months`` and
    ``SQL = -> <>`` on the customers lookup (D2's row)."""
    from tailguard.ledger import Ledger

    con = Ledger(two_customers).connect()
    try:
        r = decide(con, "D1", window=window(date_from="2026-02-01", date_to="2026-02-15"))
    finally:
        con.close()
    months = Fraction(72000, 146097)
    assert abs(Fraction(r["months"]) - months) < Fraction(1, 10**25)
    assert (r["tier"], r["segment"], r["monthly_price_usd"]) == ("pro", "smb", D(100))
    assert r["cost_to_serve_usd"] == D(100)
    assert r["monthly_cost_usd"].quantize(D("1e-20")) == D("202.9125")
    assert abs(Fraction(r["price_paid_usd"]) - 100 * months) < Fraction(1, 10**24)
    assert r["price_paid_usd"].quantize(D("0.0001")) == D("49.2823")
    assert r["quiet_days"] == 5
    assert "no events since 2026-02-15: quiet for 5 days" in " ".join(r["arithmetic"])
    assert r["recommendation"] == "offboard"


def test_a_half_open_window_is_refused(two_customers: Path) -> None:
    """decide needs both ends of a window: one open on either side is refused before any query.
    Catches ``or -> and @ if window.start is None or window.end is None`` (a window open on one
    side only would pass)."""
    from tailguard.ledger import Ledger

    feb = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    con = Ledger(two_customers).connect()
    try:
        for win in (Window(None, feb), Window(feb, None)):
            with pytest.raises(ConfigError, match="bounded window"):
                decide(con, "D1", window=win)
    finally:
        con.close()


def test_the_price_increase_line_only_when_there_is_a_gap() -> None:
    """Price 50 with the hand levers: after fix 50 - 60 - 10 = -20, an increase of 20 / 50 = 40%,
    stated as a line of the arithmetic. Price 120: margin +20, no increase needed, no such line.
    Catches ``condition negated`` and ``is not -> is`` on ``if need_pct is not None``."""
    line = "price increase to close the gap: 20.00 / 50.00 = 40.00% (max 50%)"
    assert (
        line in plan(D(100), D(50), KEYS, replace(CFG, max_price_increase_pct=D(50)))["arithmetic"]
    )
    steps = plan(D(100), D(120), KEYS, CFG)["arithmetic"]
    assert not [s for s in steps if s.startswith("price increase")]


def test_not_quiet_and_no_price(two_customers: Path) -> None:
    """D2 over February: its last event (Feb 20) is the ledger's last, so quiet for 0 days and no
    "no events since" line. D3 has events but no customers row: its price is unknown, not zero,
    so it is refused. Catches ``> -> >= @ if quiet_days > 0`` (a "quiet for 0 days" line) and
    ``or -> and @ if not dim or dim[0][2] is None`` (D3 would fail on an empty lookup instead)."""
    from tailguard.ledger import Ledger

    con = Ledger(two_customers).connect()
    try:
        r = decide(con, "D2", window=window("2026-02"))
        with pytest.raises(NoDataError, match="'D3' has no MRR in the customers table"):
            decide(con, "D3", window=window("2026-02"))
    finally:
        con.close()
    assert (r["quiet_days"], r["monthly_price_usd"], r["tier"]) == (0, D(999), "team")
    assert not [s for s in r["arithmetic"] if s.startswith("no events since")]
