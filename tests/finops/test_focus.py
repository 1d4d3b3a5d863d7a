"""``tailguard export focus``: FOCUS 1.2 rows, worked out by hand, and their totals against
``report customers`` for the same month.

The month (2025-06), by hand:
- acme, 06-01, openai gpt-4o: e1 reported $0.012345 (1,000 in of which 200 cached, 100 out);
  e2 priced from the card: gpt-4o is $2.50 / M input, $1.25 / M cached input, $10 / M output,
  so 800 x 2.5e-6 + 200 x 1.25e-6 + 100 x 10e-6 = 0.002 + 0.00025 + 0.001 = $0.00325.
  Rows per token type: input 800 tokens $0.002, cached input 200 $0.00025, output 100 $0.001
  (e2's parts, stored by pricing), and total 1,100 tokens $0.012345 (e1: a reported cost cannot
  be split); no cache write row (no tokens, no cost). Together $0.015595.
- beta, 06-02: a tool call `search` $0.50 (1 call), a retrieval $0.003 (3 queries), an
  escalation $2.25 (3.5 minutes), and an unpriced call to a model no price card knows
  (left out: no cost). Guard and outcome rows cost nothing and make no row.
- an event on 07-01 is outside the month.
Total: 0.015595 + 0.5 + 0.003 + 2.25 = $2.768595, in 7 rows.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import pytest

from tailguard.analytics.period import window
from tailguard.analytics.report import customer_report
from tailguard.cli import run
from tailguard.finops.focus import FOCUS_12_COLUMNS, export_focus
from tailguard.ledger import Ledger

#: the FOCUS 1.0 columns (the specification's column list, v1.0), checked by focus-validator
FOCUS_10 = {
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName",
    "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName",
    "Tags",
}  # fmt: skip
#: added by 1.1 and 1.2 (the 1.2 specification's column list)
FOCUS_12_ADDED = {
    "BillingAccountType", "CapacityReservationId", "CapacityReservationStatus",
    "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "InvoiceId", "PricingCurrency",
    "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "ServiceSubcategory", "SkuMeter", "SkuPriceDetails",
    "SubAccountType",
}  # fmt: skip
#: 1.0's mandatory columns that must never be null
NOT_NULL = (
    "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeFrequency", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
    "PricingCategory", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
)  # fmt: skip
#: FOCUS 1.2 ServiceCategory values
SERVICE_CATEGORIES = {
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
    "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
    "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security",
    "Storage", "Web", "Other",
}  # fmt: skip

EVENTS = [
    {"kind": "llm_call", "event_id": "e1", "ts": "2025-06-01T10:00:00Z", "customer_id": "acme",
     "provider": "openai", "model": "gpt-4o", "input_tokens": 1000, "cache_read_tokens": 200,
     "output_tokens": 100, "cost_usd": "0.012345"},
    {"kind": "llm_call", "event_id": "e2", "ts": "2025-06-01T23:59:59Z", "customer_id": "acme",
     "provider": "openai", "model": "gpt-4o", "input_tokens": 1000, "cache_read_tokens": 200,
     "output_tokens": 100},
    {"kind": "llm_call", "event_id": "e3", "ts": "2025-06-02T11:00:00Z", "customer_id": "beta",
     "provider": "acme-ai", "model": "no-such-model-anywhere", "input_tokens": 500,
     "output_tokens": 50},
    {"kind": "tool_call", "event_id": "t1", "ts": "2025-06-02T11:00:00Z", "customer_id": "beta",
     "tool": "search", "tool_kind": "read", "cost_usd": "0.5"},
    {"kind": "retrieval", "event_id": "r1", "ts": "2025-06-02T11:00:00Z", "customer_id": "beta",
     "queries": 3, "cost_usd": "0.003"},
    {"kind": "escalation", "event_id": "x1", "ts": "2025-06-02T11:00:00Z",
     "customer_id": "beta", "minutes": 3.5, "cost_usd": "2.25"},
    {"kind": "task_outcome", "event_id": "o1", "ts": "2025-06-02T12:00:00Z",
     "customer_id": "beta", "task_id": "k1", "outcome": "accepted"},
    {"kind": "llm_call", "event_id": "late", "ts": "2025-07-01T00:00:00Z", "customer_id": "acme",
     "provider": "openai", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 1,
     "cost_usd": "7"},
]  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "ledger")
    led.append(EVENTS)
    return led


def _rows(path: Path) -> list[dict]:
    rel = duckdb.sql(f"SELECT * FROM '{path}' ORDER BY ChargePeriodStart, ResourceType")
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def test_rows_by_hand(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    done = export_focus(ledger, "2025-06", out, account_id="acct-1", account_name="Acme Inc")
    assert (done.rows, done.billed_cost_usd, done.unpriced_calls) == (7, Decimal("2.768595"), 1)
    rows = _rows(out)
    llms = {r["x_TokenType"]: r for r in rows if r["ResourceType"] == "Model"}
    assert {t: (r["BilledCost"], r["ConsumedQuantity"]) for t, r in llms.items()} == {
        "input": (Decimal("0.002"), Decimal(800)),
        "cached input": (Decimal("0.00025"), Decimal(200)),
        "output": (Decimal("0.001"), Decimal(100)),
        "total": (Decimal("0.012345"), Decimal(1100)),
    }
    llm = llms["cached input"]
    assert llm["x_CustomerId"] == llm["ConsumerId"] == "acme"
    assert llm["BilledCost"] == llm["EffectiveCost"] == llm["ListCost"] == Decimal("0.00025")
    assert (llm["ConsumedUnit"], llm["PricingQuantity"]) == ("Tokens", Decimal(200))
    assert json.loads(llm["SkuPriceDetails"]) == {
        "Model": "gpt-4o",
        "Provider": "openai",
        "TokenType": "cached input",
    }
    assert (llm["SkuId"], llm["ChargeDescription"]) == (
        "openai/gpt-4o/cached input",
        "gpt-4o cached input tokens",
    )
    assert (llm["ProviderName"], llm["ServiceCategory"]) == ("openai", "AI and Machine Learning")
    assert llm["ChargeCategory"] == "Usage"
    assert (llm["BillingAccountId"], llm["BillingAccountName"]) == ("acct-1", "Acme Inc")
    assert str(llm["ChargePeriodStart"].date()) == "2025-06-01"
    assert str(llm["ChargePeriodEnd"].date()) == "2025-06-02"
    assert str(llm["BillingPeriodEnd"].date()) == "2025-07-01"
    others = {r["ResourceType"]: r for r in rows if r["ResourceType"] != "Model"}
    assert {k: (r["BilledCost"], r["ConsumedQuantity"], r["ConsumedUnit"]) for k, r in
            others.items()} == {
        "Tool": (Decimal("0.5"), Decimal(1), "Calls"),
        "Retrieval": (Decimal("0.003"), Decimal(3), "Queries"),
        "Human escalation": (Decimal("2.25"), Decimal("3.5"), "Minutes"),
    }  # fmt: skip
    assert all(r["x_CustomerId"] == "beta" for r in others.values())
    assert all(r["x_TokenType"] is None for r in others.values())


def test_totals_equal_report_customers(ledger: Ledger, tmp_path: Path) -> None:
    """The export and ``report customers`` agree to the cent (here: exactly), per customer."""
    out = tmp_path / "f.parquet"
    export_focus(ledger, "2025-06", out, account_id="a", account_name="a")
    report = customer_report(ledger, window=window("2025-06"))
    by_customer = dict(
        duckdb.sql(f"SELECT x_CustomerId, sum(BilledCost) FROM '{out}' GROUP BY 1").fetchall()
    )
    assert by_customer == {r["customer_id"]: r["cost_usd"] for r in report}
    assert sum(by_customer.values()) == Decimal("2.768595")


def test_focus_columns_against_the_spec(ledger: Ledger, tmp_path: Path) -> None:
    """Every 1.0 column (what focus-validator 1.0 checks) and every 1.2 addition, with the
    types and value rules the spec gives: costs decimal and never null, dates UTC timestamps,
    ServiceCategory from its list, SkuPriceDetails a JSON object with PascalCase keys."""
    assert set(FOCUS_12_COLUMNS) == FOCUS_10 | FOCUS_12_ADDED
    out = tmp_path / "f.parquet"
    export_focus(ledger, "2025-06", out, account_id="a", account_name="a")
    rel = duckdb.sql(f"SELECT * FROM '{out}'")
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    assert set(types) >= FOCUS_10 | FOCUS_12_ADDED
    for c in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ConsumedQuantity"):
        assert types[c].startswith("DECIMAL"), c
    for c in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        assert types[c] == "TIMESTAMP WITH TIME ZONE", c
    rows = _rows(out)
    for c in NOT_NULL:
        assert all(r[c] is not None for r in rows), c
    assert {r["ServiceCategory"] for r in rows} <= SERVICE_CATEGORIES
    assert {r["ChargeFrequency"] for r in rows} == {"Usage-Based"}
    for r in rows:
        details = json.loads(r["SkuPriceDetails"])
        assert isinstance(details, dict) and all(k[:1].isupper() for k in details)


def test_csv_dates_are_iso_utc(ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    export_focus(ledger, "2025-06", out, account_id="a", account_name="a")
    header, first = out.read_text().splitlines()[:2]
    cells = dict(zip(header.split(","), first.split(","), strict=False))
    assert cells["ChargePeriodStart"] == "2025-06-01T00:00:00Z"
    assert cells["BilledCost"] == "0.000250000"  # 06-01's first row: cached input


def test_cli(ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["export", "focus", "--period", "2025-06", "--ledger", str(ledger.path)]
    assert run([*base, "-o", str(tmp_path / "f.parquet")]) == 1  # no billing account
    assert "billing account id" in capsys.readouterr().err
    assert run([*base, "-o", str(tmp_path / "f.txt"), "--billing-account-id", "a"]) == 2
    assert run([*base, "-o", str(tmp_path / "f.parquet"), "--billing-account-id", "a"]) == 0
    out = capsys.readouterr()
    assert "7 FOCUS rows, BilledCost $2.77" in out.out
    assert "1 LLM calls without a price" in out.err
    assert run(["export", "focus", "--period", "2025-13", "-o", "x.csv"]) == 2


def test_ledger_written_before_the_cost_parts(ledger: Ledger, tmp_path: Path) -> None:
    """Segments that predate ``requests`` and the cost parts read them as null: e2's priced
    call then exports in the ``total`` row with e1 (2,200 tokens, $0.015595), and the month's
    total is unchanged."""
    import pyarrow.parquet as pq

    from tailguard.events.schema import COMPONENT_COLUMNS

    for f in ledger.segment_files():
        pq.write_table(pq.read_table(f).drop_columns(["requests", *COMPONENT_COLUMNS]), f)
    out = tmp_path / "f.parquet"
    done = export_focus(Ledger(ledger.path), "2025-06", out, account_id="a", account_name="a")
    assert (done.rows, done.billed_cost_usd) == (4, Decimal("2.768595"))
    llm = [r for r in _rows(out) if r["ResourceType"] == "Model"]
    assert [(r["x_TokenType"], r["BilledCost"], r["ConsumedQuantity"]) for r in llm] == [
        ("total", Decimal("0.015595"), Decimal(2200))
    ]


FOCUS_VALIDATOR = os.environ.get("TAILGUARD_FOCUS_VALIDATOR")
#: the validator's rules written against pre-1.0 column names, and the 1.0+ column each copies
PRE_10_NAMES = {
    "InvoiceIssuer": "InvoiceIssuerName",
    "Provider": "ProviderName",
    "Publisher": "PublisherName",
    "ResourceID": "ResourceId",
    "ChargeType": "ChargeCategory",
}


@pytest.mark.skipif(
    not FOCUS_VALIDATOR,
    reason="set TAILGUARD_FOCUS_VALIDATOR to a focus-validator in a venv of its own "
    "(it pins numpy<2: docs/finops.md)",
)
def test_focus_validator_1_0(ledger: Ledger, tmp_path: Path) -> None:
    """The FinOps Foundation's validator (FOCUS 1.0) on the CSV export, with the five pre-1.0
    names its rules still use added as copies: every check passes but the one that downloads
    the currency list (no network here), which may pass where there is one."""
    out = tmp_path / "f.csv"
    export_focus(ledger, "2025-06", out, account_id="acct-1", account_name="Acme Inc")
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    aliased = tmp_path / "f-1.0.csv"
    with aliased.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[*rows[0], *PRE_10_NAMES])
        w.writeheader()
        for r in rows:
            w.writerow({**r, **{old: r[new] for old, new in PRE_10_NAMES.items()}})
    report = tmp_path / "fv.xml"
    subprocess.run(
        [str(FOCUS_VALIDATOR), "--data-file", str(aliased), "--validate-version", "1.0",
         "--output-type", "unittest", "--output-destination", str(report)],
        check=False, capture_output=True, timeout=600,
    )  # fmt: skip
    root = ElementTree.parse(report).getroot()
    assert int(root.get("tests") or 0) >= 133
    failed = {f.get("name") for f in root.iter("failure")}
    assert failed <= {"BillingCurrency_IsCurrencyCode"}


def test_file_rows_in_day_customer_order(ledger: Ledger, tmp_path: Path) -> None:
    """The file itself is ordered (day, customer, provider, ...), read back without a sort:
    the order is set on the grouped lines and kept by the scan that writes the file."""
    out = tmp_path / "f.parquet"
    export_focus(ledger, "2025-06", out, account_id="a", account_name="a")
    keys = duckdb.sql(
        f"SELECT ChargePeriodStart, ConsumerId, ProviderName, x_TokenType FROM '{out}'"
    ).fetchall()
    assert [k[:3] for k in keys] == sorted(k[:3] for k in keys)
    assert [k[3] for k in keys[:4]] == ["cached input", "input", "output", "total"]
