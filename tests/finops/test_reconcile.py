"""``tailguard reconcile``: the invoice against the ledger, figures worked out by hand.

The OpenAI Costs API file is the cookbook's real export (read in place from the shared
realdata folder, never copied): 29 daily buckets from 2025-01-11, one result each, no line items.
Its 2025-01-13 bucket bills 9.888144383403077 dollars (read off the file).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.cli import run
from tailguard.errors import InputError
from tailguard.finops.invoices import read_invoice
from tailguard.finops.reconcile import reconcile
from tailguard.ledger import Ledger

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
OPENAI_COSTS = REALDATA / "exports" / "openai_costs_1d_cookbook.json"


def _call(eid: str, ts: str, provider: str, model: str, cost: str, customer: str = "acme") -> dict:
    return {
        "kind": "llm_call", "event_id": eid, "ts": ts, "customer_id": customer,
        "provider": provider, "model": model, "input_tokens": 10, "output_tokens": 1,
        "cost_usd": cost,
    }  # fmt: skip


def test_openai_costs_file() -> None:
    lines = read_invoice(OPENAI_COSTS, "openai-costs")
    assert len(lines) == 29
    assert (str(lines[0].date), lines[0].provider) == ("2025-01-11", "openai")
    assert lines[0].amount_usd == Decimal("0.13080438340307526")  # exact: no float on the way
    assert read_invoice(OPENAI_COSTS) == lines  # the format is recognised from the shape


def test_openai_reconcile_by_hand(tmp_path: Path) -> None:
    """2025-01-13: billed 9.888144383403077; the ledger has $5 + $1.5 of OpenAI (and $2 of
    Anthropic, not on this bill): unattributed 3.388144383403077, coverage 6.5 / 9.888... ."""
    led = Ledger(tmp_path / "l")
    led.append(
        [
            _call("a", "2025-01-13T01:00:00Z", "openai", "gpt-4o", "5"),
            _call("b", "2025-01-13T23:00:00Z", "OpenAI", "gpt-4o-mini", "1.5", "beta"),
            _call("c", "2025-01-13T02:00:00Z", "anthropic", "claude-x", "2"),
        ]
    )
    rec = reconcile(led, read_invoice(OPENAI_COSTS), "2025-01")
    day = next(r for r in rec.rows if r["date"] == "2025-01-13")
    assert day["provider"] == "openai" and day["model"] is None
    assert day["billed_usd"] == Decimal("9.888144383403077")
    assert day["attributed_usd"] == Decimal("6.5")
    assert day["unattributed_usd"] == Decimal("3.388144383403077")
    assert day["coverage"] == pytest.approx(6.5 / 9.888144383403077)
    assert day["status"] == "ok"
    # January holds the buckets of 01-11 .. 01-31 (21 days); 8 February days are not compared
    assert len(rec.rows) == 21 and rec.lines_outside_period == 8
    assert {r["provider"] for r in rec.rows} == {"openai"}


ANTHROPIC = {
    "data": [
        {
            "starting_at": "2025-08-01T00:00:00Z",
            "ending_at": "2025-08-02T00:00:00Z",
            "results": [
                {"currency": "USD", "amount": "1234.5", "workspace_id": None,
                 "description": "Claude Sonnet 4 Usage - Input Tokens", "cost_type": "tokens",
                 "context_window": "0-200k", "model": "claude-sonnet-4-20250514",
                 "service_tier": "standard", "token_type": "uncached_input_tokens"},
                {"currency": "USD", "amount": "100", "workspace_id": None,
                 "description": "Claude Sonnet 4 Usage - Output Tokens", "cost_type": "tokens",
                 "context_window": "0-200k", "model": "claude-sonnet-4-20250514",
                 "service_tier": "standard", "token_type": "output_tokens"},
            ],
        }
    ],
    "has_more": False,
    "next_page": None,
}  # fmt: skip


def test_anthropic_cents_per_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """1234.5 + 100 cents = $13.345 billed for sonnet-4 on 08-01; the ledger has $10 of it
    (unattributed $3.345, coverage 10 / 13.345) and $0.25 of a model the bill does not name
    (nothing billed: the ledger exceeds the bill, an error on its row, exit 1)."""
    inv = tmp_path / "cost.json"
    inv.write_text(json.dumps(ANTHROPIC))
    led = Ledger(tmp_path / "l")
    led.append(
        [
            _call("a", "2025-08-01T05:00:00Z", "anthropic", "claude-sonnet-4-20250514", "10"),
            _call("b", "2025-08-01T06:00:00Z", "anthropic", "claude-haiku-x", "0.25"),
        ]
    )
    rec = reconcile(led, read_invoice(inv, "anthropic-costs"), "2025-08")
    by_model = {r["model"]: r for r in rec.rows}
    sonnet = by_model["claude-sonnet-4-20250514"]
    assert (sonnet["billed_usd"], sonnet["unattributed_usd"]) == (
        Decimal("13.345"),
        Decimal("3.345"),
    )
    assert sonnet["coverage"] == pytest.approx(10 / 13.345)
    haiku = by_model["claude-haiku-x"]
    assert (haiku["billed_usd"], haiku["unattributed_usd"], haiku["status"]) == (
        Decimal(0),
        Decimal("-0.25"),
        "over_attributed",
    )
    code = run(
        ["reconcile", "--invoice", str(inv), "--period", "2025-08", "--ledger", str(led.path),
         "--json"]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 1
    rows = json.loads(out.out)
    assert {r["model"]: r["unattributed_usd"] for r in rows} == {
        "claude-sonnet-4-20250514": 3.345,
        "claude-haiku-x": -0.25,
    }
    assert "2025-08-01 anthropic claude-haiku-x, by $0.2500" in out.err


def test_csv_invoice_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "bill.csv"
    good.write_text("date,provider,model,amount_usd\n2025-03-02,Mistral,,4.10\n")
    led = Ledger(tmp_path / "l")
    led.append([_call("a", "2025-03-02T05:00:00Z", "mistral", "m-large", "4")])
    code = run(
        ["reconcile", "--invoice", str(good), "--period", "2025-03", "--ledger", str(led.path),
         "--csv"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("date,provider,model,billed_usd,attributed_usd,unattributed_usd")
    assert out[1].startswith(
        "2025-03-02,mistral,,4.100000000,4.000000000,0.100000000,0.975609756097561,0,ok"
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,provider,model,amount_usd\n2025-03-02,x,,4\n2025-3-2,x,,1\n2025-03-04,x,,abc\n"
    )
    with pytest.raises(InputError) as err:
        read_invoice(bad)
    assert err.value.problems == [
        f"{bad}:3: date: '2025-3-2' is not a date (YYYY-MM-DD)",
        f"{bad}:4: amount_usd: 'abc' is not a number",
    ]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    billed=st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
    spent=st.lists(st.integers(0, 10**6), min_size=1, max_size=5),
)
def test_rows_add_up(
    tmp_path_factory: pytest.TempPathFactory, billed: list[int], spent: list[int]
) -> None:
    """Whatever the bill and the ledger: per row billed - attributed = unattributed, and the
    rows' billed and attributed totals are the bill's and the ledger's (in cents, so exact)."""
    d = tmp_path_factory.mktemp("r")
    bill = d / "b.csv"
    bill.write_text(
        "date,provider,model,amount_usd\n"
        + "".join(f"2025-05-{i + 1:02d},p,,{Decimal(c) / 100}\n" for i, c in enumerate(billed))
    )
    led = Ledger(d / "l")
    led.append(
        [_call(f"e{i}", f"2025-05-{i + 2:02d}T00:00:00Z", "p", "m", str(Decimal(c) / 100))
         for i, c in enumerate(spent)]
    )  # fmt: skip
    rec = reconcile(led, read_invoice(bill), "2025-05")
    for r in rec.rows:
        assert r["billed_usd"] - r["attributed_usd"] == r["unattributed_usd"]
        assert (r["status"] == "over_attributed") == (r["unattributed_usd"] < 0)
    assert rec.billed_usd == Decimal(sum(billed)) / 100
    assert rec.attributed_usd == Decimal(sum(spent)) / 100
