"""``reconcile`` and its allocations on a ClickHouse ledger: the same rows as on DuckDB.

The month of tests/finops/test_allocation.py (2025-03, an OpenAI CSV bill), ingested into a
DuckDB ledger and a chdb ledger. By hand: 03-02 billed $100 against acme $10, beta $20, gamma
$30 (remainder $40); 03-03 billed $9 with no call (spread over the month's customers).
Proportional: acme 6.67 + 1.50 = 8.17, beta 13.33 + 3.00 = 16.33, gamma 20.00 + 4.50 = 24.50;
delta ($7, Anthropic, not on the bill) 0. The reconcile runs its ledger side in ClickHouse,
the allocation is stored in ClickHouse (``ledger_allocations``), and ``report customers`` and
``margins`` show the same ``allocated_usd`` on both engines.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.analytics.context import QueryContext
from tailguard.analytics.customers import customer_rows
from tailguard.analytics.margins import margins
from tailguard.analytics.period import window
from tailguard.cli import run
from tailguard.finops.invoices import read_invoice
from tailguard.finops.reconcile import reconcile
from tailguard.ledger.clickhouse import ClickHouseLedger
from tests.finops.helpers import priced_call as _call

from .helpers import twin_ledgers, write_jsonl

EVENTS = [
    _call("a", "2025-03-02", "acme", "10"),
    _call("b", "2025-03-02", "beta", "20"),
    _call("c", "2025-03-02", "gamma", "30"),
    _call("d", "2025-03-02", "delta", "7", provider="anthropic"),
    _call("u", "2025-03-02", "acme", None),  # an unpriced call: counted, no cost
]
BY_HAND = {
    "acme": Decimal("8.17"),
    "beta": Decimal("16.33"),
    "gamma": Decimal("24.50"),
    "delta": Decimal(0),
}


@pytest.fixture
def twins(tmp_path: Path) -> tuple[object, ClickHouseLedger, Path]:
    events = [{k: v for k, v in e.items() if v is not None} for e in EVENTS]
    events[-1].update(model="no-such-model")
    duck, ch = twin_ledgers(tmp_path, write_jsonl(tmp_path / "ev.jsonl", events), None, None)
    bill = tmp_path / "bill.csv"
    bill.write_text(
        "date,provider,model,amount_usd\n2025-03-02,openai,,100.00\n2025-03-03,openai,,9.00\n"
    )
    return duck, ch, bill


def _allocated(led: object) -> dict[str, tuple[Decimal, Decimal]]:
    with QueryContext.open(led) as ctx:  # type: ignore[arg-type]
        rows = customer_rows(ctx, window("2025-03"))
    return {r["customer_id"]: (r["cost_usd"], r["allocated_usd"]) for r in rows}


def test_reconcile_and_allocations_are_the_same_on_clickhouse(
    twins: tuple[object, ClickHouseLedger, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    duck, ch, bill = twins
    lines = read_invoice(bill)
    rec_d, rec_c = reconcile(duck, lines, "2025-03"), reconcile(ch, lines, "2025-03")  # type: ignore[arg-type]
    assert rec_c.rows == rec_d.rows
    assert [(r["date"], r["unattributed_usd"], r["unpriced_calls"]) for r in rec_c.rows] == [
        ("2025-03-02", Decimal("40.000000000"), 1),
        ("2025-03-03", Decimal("9.00"), 0),
    ]
    outs = []
    for led in (duck, ch):
        target = ch.url if led is ch else str(duck.path)  # type: ignore[attr-defined]
        args = ["reconcile", "--invoice", str(bill), "--period", "2025-03", "--ledger", target]
        for _ in range(2):  # a re-run replaces the month
            assert run([*args, "--allocate", "proportional", "--json"]) == 0
            outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[2]  # the reconcile rows, as the CLI prints them
    got_d, got_c = _allocated(duck), _allocated(ch)
    assert got_c == got_d
    assert {c: a for c, (_, a) in got_c.items()} == BY_HAND
    assert ch.allocations_table().num_rows == 6  # two days x three customers
    with QueryContext.open(ch) as ctx:
        m_c = margins(ctx, window("2025-03"))
    with QueryContext.open(duck) as ctx:  # type: ignore[arg-type]
        m_d = margins(ctx, window("2025-03"))
    assert m_c == m_d
    # the copy-out connection (FOCUS export, the demo) sees the same allocation rows
    con = ch.connect()
    try:
        rows = con.execute(
            "SELECT customer_id, sum(allocated_usd) FROM allocations GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(c, a) for c, a in sorted(BY_HAND.items()) if a]
    before = ch.content_version()
    assert run([*args, "--allocate", "none"]) == 0  # args: the ClickHouse ledger's
    capsys.readouterr()
    assert ch.content_version() != before  # the dashboard's cache key moves
    assert ch.allocations_table().num_rows == 0
    assert {c: a for c, (_, a) in _allocated(ch).items()} == dict.fromkeys(BY_HAND, Decimal(0))


def test_the_focus_export_is_the_same_file_on_clickhouse(tmp_path: Path) -> None:
    """A simulated month (LLM calls with token-type costs, tools, retrieval, escalations) in
    both engines: the FOCUS export groups the lines in ClickHouse and writes the same rows,
    in the same order, as the DuckDB ledger's export (Parquet row for row, CSV byte for byte),
    with the same totals."""
    import datetime as dt

    import pyarrow.parquet as pq

    from tailguard.finops.focus import export_focus
    from tailguard.simulate import simulate

    sim = simulate(customers=4, days=12, seed=5, out=tmp_path / "sim", start=dt.date(2026, 3, 25))
    duck, ch = twin_ledgers(tmp_path, sim.events_path, sim.prices_path, sim.customers_path)
    got = {}
    for name, led in (("duck", duck), ("ch", ch)):
        for suffix in ("parquet", "csv"):
            out = tmp_path / f"{name}.{suffix}"
            res = export_focus(led, "2026-03", out, account_id="acct", account_name="Acct")  # type: ignore[arg-type]
            got[name, suffix] = (res.rows, res.billed_cost_usd, res.unpriced_calls)
    assert got["ch", "parquet"] == got["duck", "parquet"] == got["duck", "csv"]
    assert got["duck", "parquet"][0] > 20
    assert (tmp_path / "ch.csv").read_bytes() == (tmp_path / "duck.csv").read_bytes()
    a, b = pq.read_table(tmp_path / "ch.parquet"), pq.read_table(tmp_path / "duck.parquet")
    assert a.schema == b.schema
    assert a.to_pylist() == b.to_pylist()


def test_pricing_drift_runs_in_clickhouse_with_the_same_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report pricing-drift`` on an import into both engines (tests/importers/test_drift.py's
    rows, by hand there): gpt-4o-mini priced $0.0006 against $0.0010 reported (-40.00%), and
    my-finetune unpriced with $0.002 reported; gpt-4o within 1%."""
    from tailguard.importers import import_files

    from .helpers import chdb_url

    def row(rid: str, model: str, prompt: int, completion: int, spend: str) -> dict[str, object]:
        return {
            "request_id": rid, "startTime": "2025-06-03T08:00:00Z", "model": model,
            "custom_llm_provider": "openai", "end_user": "acme", "prompt_tokens": prompt,
            "completion_tokens": completion, "spend": spend,
        }  # fmt: skip

    src = write_jsonl(
        tmp_path / "spend.jsonl",
        [
            row("a", "gpt-4o", 1000, 200, "0.0045"),
            row("d", "gpt-4o", 1000, 200, "0.00454"),
            row("b", "gpt-4o-mini", 2000, 500, "0.0010"),
            row("c", "my-finetune", 10, 10, "0.002"),
        ],
    )
    outs = []
    for target in (str(tmp_path / "L"), chdb_url(tmp_path / "ch")):
        import_files("litellm", [src], target)
        assert run(["report", "pricing-drift", "--ledger", target, "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out, parse_float=Decimal))
    assert outs[1] == outs[0]
    assert [(r["model"], r["unpriced_calls"]) for r in outs[1]] == [
        ("gpt-4o-mini", 0),
        ("my-finetune", 1),
    ]
    assert Decimal(outs[1][0]["drift_pct"]) == Decimal("-40.00")
