"""``reconcile --allocate``: the unattributed remainder spread over the customers, worked by hand.

The month (2025-03, OpenAI, a generic CSV bill):
- 2025-03-02: billed $100.00; the ledger has acme $10, beta $20, gamma $30: remainder $40.00.
  proportional (10:20:30): exact shares 6.666.., 13.333.., 20 -> floors 6.66, 13.33, 20.00 =
  39.99; the cent left goes to the largest dropped fraction (acme, .67 of a cent): 6.67, 13.33,
  20.00. even: 13.333.. each -> 13.33 x 3 = 39.99; all fractions tie, so the cent goes to the
  first id: acme 13.34, beta 13.33, gamma 13.33.
- 2025-03-03: billed $9.00, no call that day: spread over the month's OpenAI customers by their
  month's cost (10:20:30): 1.50, 3.00, 4.50 (even: 3.00 each).
Per customer, attributed + allocated: proportional acme 18.17, beta 36.33, gamma 54.50 =
109.00 = the bill; even acme 26.34, beta 36.33, gamma 46.33 = 109.00.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.cli import run
from tailguard.errors import ArgumentError
from tailguard.finops.allocation import allocate, allocation_file, split
from tailguard.finops.invoices import read_invoice
from tailguard.finops.reconcile import reconcile
from tailguard.ledger import Ledger
from tests.finops.helpers import priced_call as _call


def _setup(tmp_path: Path, second_day: str = "9.00") -> tuple[Ledger, Path]:
    led = Ledger(tmp_path / "l")
    led.append(
        [
            _call("a", "2025-03-02", "acme", "10"),
            _call("b", "2025-03-02", "beta", "20"),
            _call("c", "2025-03-02", "gamma", "30"),
            # another provider, not on the bill: never part of the allocation
            _call("d", "2025-03-02", "delta", "7", provider="anthropic"),
        ]
    )
    bill = tmp_path / "bill.csv"
    bill.write_text(
        "date,provider,model,amount_usd\n"
        f"2025-03-02,openai,,100.00\n2025-03-03,openai,,{second_day}\n"
    )
    return led, bill


def _per_customer(led: Ledger, bill: Path, method: str) -> dict[str, tuple[Decimal, Decimal]]:
    rec = reconcile(led, read_invoice(bill), "2025-03")
    alloc = allocate(led, rec.rows, "2025-03", method)
    assert alloc.unallocated == []
    return {c["customer_id"]: (c["allocated_usd"], c["total_usd"]) for c in alloc.customers}


def test_proportional_by_hand(tmp_path: Path) -> None:
    led, bill = _setup(tmp_path)
    got = _per_customer(led, bill, "proportional")
    assert got == {
        "acme": (Decimal("6.67") + Decimal("1.50"), Decimal("18.17")),
        "beta": (Decimal("13.33") + Decimal("3.00"), Decimal("36.33")),
        "gamma": (Decimal("20.00") + Decimal("4.50"), Decimal("54.50")),
    }
    assert sum(t for _, t in got.values()) == Decimal("109.00")


def test_even_by_hand(tmp_path: Path) -> None:
    led, bill = _setup(tmp_path)
    got = _per_customer(led, bill, "even")
    assert got == {
        "acme": (Decimal("13.34") + Decimal("3.00"), Decimal("26.34")),
        "beta": (Decimal("13.33") + Decimal("3.00"), Decimal("36.33")),
        "gamma": (Decimal("13.33") + Decimal("3.00"), Decimal("46.33")),
    }
    assert sum(t for _, t in got.values()) == Decimal("109.00")


def test_sub_cent_rest_goes_to_the_heaviest(tmp_path: Path) -> None:
    """A bill of $9.005 on 03-03: 900 whole cents split 1.50 / 3.00 / 4.50, and the half cent
    goes to gamma (the largest weight), so the sum is 9.005 exactly."""
    led, bill = _setup(tmp_path, second_day="9.005")
    rec = reconcile(led, read_invoice(bill), "2025-03")
    alloc = allocate(led, rec.rows, "2025-03", "proportional")
    day3 = {
        r["customer_id"]: r["allocated_usd"] for r in alloc.rows if str(r["day"]).endswith("03")
    }
    assert day3 == {"acme": Decimal("1.50"), "beta": Decimal("3.00"), "gamma": Decimal("4.505")}
    assert sum(c["total_usd"] for c in alloc.customers) == Decimal("109.005")


def test_cli_stores_the_rows_idempotently_and_none_removes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    led, bill = _setup(tmp_path)
    args = ["reconcile", "--invoice", str(bill), "--period", "2025-03", "--ledger", str(led.path)]
    for _ in range(2):  # a re-run replaces the month, it does not add to it
        assert run([*args, "--allocate", "proportional"]) == 0
        out = capsys.readouterr().out
        con = Ledger(led.path).connect()
        rows = con.execute(
            "SELECT customer_id, sum(allocated_usd) FROM allocations GROUP BY 1 ORDER BY 1"
        ).fetchall()
        con.close()
        assert rows == [
            ("acme", Decimal("8.17")),
            ("beta", Decimal("16.33")),
            ("gamma", Decimal("24.50")),
        ]
    assert "attributed + allocated = $109.00 (billed $109.00)" in " ".join(out.split())
    # --json keeps the reconcile rows (the contract), whatever the allocation
    assert run([*args, "--allocate", "proportional", "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert {row["date"] for row in js} == {"2025-03-02", "2025-03-03"}
    assert run([*args, "--allocate", "none"]) == 0
    assert not allocation_file(led.path, "2025-03").exists()
    con = Ledger(led.path).connect()
    assert con.execute("SELECT count(*) FROM allocations").fetchone() == (0,)
    con.close()


def test_over_attributed_allocates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """03-02 billed $50 against $60 measured: an error, and no allocation row is written."""
    led, bill = _setup(tmp_path)
    bill.write_text("date,provider,model,amount_usd\n2025-03-02,openai,,50\n")
    args = ["reconcile", "--invoice", str(bill), "--period", "2025-03", "--ledger", str(led.path)]
    assert run([*args, "--allocate", "even"]) == 1
    assert "exceeds the bill" in capsys.readouterr().err
    assert not allocation_file(led.path, "2025-03").exists()
    rec = reconcile(led, read_invoice(bill), "2025-03")
    with pytest.raises(ArgumentError, match="2025-03-02 openai"):
        allocate(led, rec.rows, "2025-03", "proportional")


def test_unknown_method_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    led, bill = _setup(tmp_path)
    args = ["reconcile", "--invoice", str(bill), "--period", "2025-03", "--ledger", str(led.path)]
    assert run([*args, "--allocate", "fair"]) == 2
    assert "proportional, even, none" in capsys.readouterr().err


cents = st.decimals(0, 10**6, places=2, allow_nan=False, allow_infinity=False)
weights = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.decimals(0, 1000, places=9, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(cents, st.decimals(0, "0.009999", places=6), weights)
def test_split_adds_up_exactly(whole: Decimal, rest: Decimal, w: dict[str, Decimal]) -> None:
    """The parts sum to the remainder exactly; every part but one is whole cents; each part is
    within a cent (plus the sub-cent rest) of its exact proportional share."""
    remainder = whole + rest
    parts = split(remainder, w)
    assert sum(parts.values()) == remainder
    assert all(p >= 0 for p in parts.values())
    assert sum(1 for p in parts.values() if p != p.quantize(Decimal("0.01"))) <= 1
    total_w = sum(w.values())
    for k, p in parts.items():
        share = whole * w[k] / total_w if total_w else whole / len(w)
        assert abs(p - share) <= Decimal("0.01") + rest + Decimal("1e-20")


def test_split_refuses_a_negative_remainder() -> None:
    with pytest.raises(ValueError, match="negative"):
        split(Decimal("-1"), {"a": Decimal(1)})


_CALLS = st.lists(
    st.tuples(
        st.integers(1, 4),  # day of March
        st.sampled_from(["acme", "beta", "gamma", "delta"]),
        st.sampled_from(["openai", "anthropic"]),
        st.decimals(0, 50, places=9, allow_nan=False, allow_infinity=False),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=_CALLS,
    extra=st.lists(st.decimals(0, 100, places=6, allow_nan=False, allow_infinity=False),
                   min_size=8, max_size=8),
    method=st.sampled_from(["proportional", "even"]),
)  # fmt: skip
def test_attributed_plus_allocated_is_the_invoice(
    tmp_path_factory: pytest.TempPathFactory,
    calls: list[tuple[int, str, str, Decimal]],
    extra: list[Decimal],
    method: str,
) -> None:
    """Any ledger, any bill at or above it per day x provider: per customer, attributed +
    allocated adds up to the bill exactly (unless a provider has no customer all month, when
    exactly that remainder is reported unallocated)."""
    root = tmp_path_factory.mktemp("prop")
    led = Ledger(root / "l")
    led.append(
        [
            _call(f"e{i}", f"2025-03-0{d}", c, str(cost), provider=p)
            for i, (d, c, p, cost) in enumerate(calls)
        ]
    )
    measured: dict[tuple[int, str], Decimal] = {}
    for d, _, p, cost in calls:
        measured[(d, p)] = measured.get((d, p), Decimal(0)) + cost
    lines = ["date,provider,model,amount_usd"]
    bill = Decimal(0)
    for k, (d, p) in enumerate((d, p) for d in range(1, 5) for p in ("openai", "anthropic")):
        amount = measured.get((d, p), Decimal(0)) + extra[k]
        bill += amount
        lines.append(f"2025-03-0{d},{p},,{amount}")
    (root / "bill.csv").write_text("\n".join(lines) + "\n")
    rec = reconcile(led, read_invoice(root / "bill.csv"), "2025-03")
    alloc = allocate(led, rec.rows, "2025-03", method)
    total = sum((c["total_usd"] for c in alloc.customers), Decimal(0))
    assert total + alloc.unallocated_usd == bill
    providers_used = {p for _, _, p, _ in calls}
    assert {u["provider"] for u in alloc.unallocated} <= {"openai", "anthropic"} - providers_used


def test_report_customers_shows_allocated_beside_cost(tmp_path: Path) -> None:
    """After a proportional allocation, ``report customers`` keeps the measured cost and adds
    the allocation beside it: acme 10 + 8.17, beta 20 + 16.33, gamma 30 + 24.50 (= the bill,
    109.00), delta 7 + 0 (its provider is not on this bill)."""
    from tailguard.analytics.period import window
    from tailguard.analytics.report import customer_report
    from tailguard.finops.allocation import store

    led, bill = _setup(tmp_path)
    rec = reconcile(led, read_invoice(bill), "2025-03")
    store(led.path, "2025-03", allocate(led, rec.rows, "2025-03", "proportional"))
    got = {
        r["customer_id"]: (r["cost_usd"], r["allocated_usd"])
        for r in customer_report(Ledger(led.path), window=window("2025-03"))
    }
    assert got == {
        "acme": (Decimal(10), Decimal("8.17")),
        "beta": (Decimal(20), Decimal("16.33")),
        "gamma": (Decimal(30), Decimal("24.50")),
        "delta": (Decimal(7), Decimal(0)),
    }
    # only the window's days count: 03-03's allocation (1.50 / 3.00 / 4.50) is outside 03-02
    day2 = customer_report(Ledger(led.path), window=window(None, "2025-03-02", "2025-03-02"))
    assert {r["customer_id"]: r["allocated_usd"] for r in day2} == {
        "acme": Decimal("6.67"),
        "beta": Decimal("13.33"),
        "gamma": Decimal("20.00"),
        "delta": Decimal(0),
    }
