"""The concentration report: hand-computed fixtures, invariants, the plot and the CLI."""

from __future__ import annotations

import itertools
import json
import math
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from tailguard.analytics import plfit
from tailguard.analytics.concentration import (
    QUANTILES,
    TOP_SHARES,
    concentration,
    plot_concentration,
)
from tailguard.cli import run
from tailguard.errors import MissingDependencyError


def test_hand_computed_small_fixture() -> None:
    # values 1, 2, 3, 4, 10: total 20.
    r = concentration([3, 10, 1, 4, 2], ids=["c", "e", "a", "d", "b"])
    assert r["n"] == 5 and r["total"] == 20
    # top k% = ceil(k/100 * 5) entities: 1 entity up to 20% -> 10/20
    assert r["top_counts"] == dict.fromkeys(TOP_SHARES, 1)
    assert r["top_shares"] == dict.fromkeys(TOP_SHARES, 0.5)
    # gini = sum (2i - n - 1) x_(i) / (n sum x) = (-4*1 - 2*2 + 0*3 + 2*4 + 4*10) / 100 = 0.4
    assert r["gini"] == pytest.approx(0.4)
    # p50 = 3 (middle value); above it: 4 + 10 = 14 of 20, 2 entities
    assert r["quantiles"]["p50"] == {
        "value": 3.0,
        "total_above": 14.0,
        "share_above": 0.7,
        "n_above": 2,
    }
    # p90: position 0.9 * 4 = 3.6 -> 4 + 0.6 * (10 - 4) = 7.6; above it only the 10
    q90 = r["quantiles"]["p90"]
    assert q90["value"] == pytest.approx(7.6)
    assert (q90["total_above"], q90["share_above"], q90["n_above"]) == (10.0, 0.5, 1)
    # Lorenz through (i/5, cumulative share): (0.2, 0.05), (0.4, 0.15), (0.6, 0.3); 0.5 -> 0.225
    lor = dict(map(tuple, r["lorenz"]))
    assert len(r["lorenz"]) == 101
    assert lor[0.2] == pytest.approx(0.05) and lor[0.4] == pytest.approx(0.15)
    assert lor[0.5] == pytest.approx(0.225) and lor[0.0] == 0.0 and lor[1.0] == 1.0
    assert r["top"][0] == {"id": "e", "value": 10.0, "share": 0.5}
    assert r["powerlaw"] is None  # five values are too few for a tail fit
    assert r["verdict"].startswith("heavy tail: the top entity (top 1%) holds 50% of spend")


def test_top_share_rounding_is_ceil() -> None:
    # 250 entities: top 1% = ceil(2.5) = 3; top 0.1% = ceil(0.25) = 1; 20% = 50 exactly
    vals = list(range(1, 251))
    r = concentration(vals)
    assert r["top_counts"]["1%"] == 3 and r["top_counts"]["0.1%"] == 1
    assert r["top_counts"]["20%"] == 50
    total = 250 * 251 / 2
    assert r["top_shares"]["1%"] == pytest.approx((250 + 249 + 248) / total)
    assert r["top_shares"]["20%"] == pytest.approx(sum(range(201, 251)) / total)
    # 10,000 entities: top 0.01% is exactly the largest one
    r = concentration(np.arange(1.0, 10_001.0))
    assert r["top_counts"]["0.01%"] == 1
    assert r["top_shares"]["0.01%"] == pytest.approx(10_000 / (10_000 * 10_001 / 2))


def test_decimal_totals_are_exact_and_negatives_reported() -> None:
    vals = [Decimal("0.10"), Decimal("0.10"), Decimal("0.10"), Decimal("0.20"), Decimal("0")]
    vals.append(Decimal("-5.00"))  # a refund netted into a total
    r = concentration(vals)
    assert r["total"] == Decimal("0.50") and isinstance(r["total"], Decimal)
    assert r["n"] == 5  # the zero is a customer; the negative is not part of a share of spend
    assert r["excluded"] == {"negative_count": 1, "negative_total": Decimal("-5.00")}
    assert r["quantiles"]["p50"]["total_above"] == Decimal("0.20")
    assert r["top_shares"]["1%"] == pytest.approx(0.4)


def test_zero_spend_and_empty() -> None:
    r = concentration([0, 0, 0])
    assert r["gini"] is None and r["top_shares"]["1%"] is None
    assert r["verdict"] == "no spend: all 3 values are zero"
    assert concentration([])["verdict"] == "no spend to analyse"
    with pytest.raises(ValueError, match="finite"):
        concentration([1.0, float("nan")])
    with pytest.raises(ValueError, match="ids"):
        concentration([1.0, 2.0], ids=["a"])


def test_power_law_section_on_a_pareto_sample() -> None:
    rng = np.random.default_rng(9)
    x = plfit.sample(2.1, 1.0, 5000, rng=rng)
    r = concentration(x, bootstrap=10, seed=1)
    pl = r["powerlaw"]
    assert abs(pl["alpha"] - 2.1) < 4 * pl["sigma"]
    assert set(pl) >= {"alpha", "xmin", "n_tail", "ks_distance", "sigma", "p_value"}
    assert 0.0 <= pl["p_value"] <= 1.0
    assert pl["vs_exponential"]["R"] > 0 and pl["vs_exponential"]["p"] < 0.1
    assert "power law" in r["verdict"] and "preferred over exponential" in r["verdict"]
    # the same fit as plfit on the positive values, zeros make no difference to it
    with_zeros = concentration(np.concatenate([x, np.zeros(100)]))
    assert with_zeros["powerlaw"]["alpha"] == pytest.approx(pl["alpha"])
    assert with_zeros["n"] == 5100


def test_discrete_flag_fits_the_discrete_law() -> None:
    rng = np.random.default_rng(1)
    x = plfit.sample(2.5, 1.0, 4000, discrete=True, rng=rng)
    r = concentration(x.astype(int).tolist(), discrete=True)
    assert r["powerlaw"]["discrete"] is True
    assert r["powerlaw"]["alpha"] == pytest.approx(plfit.fit(x, discrete=True).alpha)


values_st = hs.lists(
    # zeros, and amounts from a millionth of a dollar (scaling cannot underflow them to zero)
    hs.one_of(hs.just(0.0), hs.floats(min_value=1e-6, max_value=1e6)),
    min_size=1,
    max_size=300,
).filter(lambda v: sum(v) > 0)


@settings(max_examples=60, deadline=None)
@given(vals=values_st, seed=hs.integers(0, 1000), scale=hs.floats(0.01, 1000.0))
def test_invariants(vals: list[float], seed: int, scale: float) -> None:
    r = concentration(vals)
    n = len(vals)
    shares = [r["top_shares"][k] for k in TOP_SHARES]
    counts = [r["top_counts"][k] for k in TOP_SHARES]
    # more entities never hold less; each share is at least their head count's fair share
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(shares))
    assert all(c / n - 1e-9 <= s <= 1 + 1e-12 for s, c in zip(shares, counts, strict=True))
    assert 0.0 <= r["gini"] <= 1 - 1 / n + 1e-9
    lor = np.array(r["lorenz"])
    assert np.all(np.diff(lor[:, 1]) >= -1e-12) and np.all(lor[:, 1] <= lor[:, 0] + 1e-9)
    # a quantile's share above is the share of its n_above largest entities
    desc = np.sort(np.array(vals))[::-1]
    for key in QUANTILES:
        q = r["quantiles"][key]
        assert q["share_above"] == pytest.approx(desc[: q["n_above"]].sum() / desc.sum(), abs=1e-9)
        assert np.all(desc[: q["n_above"]] > q["value"])
    # permutation and scale invariance
    perm = list(np.random.default_rng(seed).permutation(vals))
    for other in (concentration(perm), concentration([v * scale for v in vals])):
        assert other["gini"] == pytest.approx(r["gini"], abs=1e-9)
        for k in TOP_SHARES:
            assert other["top_shares"][k] == pytest.approx(r["top_shares"][k], abs=1e-9)


def test_gini_against_the_mean_absolute_difference() -> None:
    # second method: G = sum_i sum_j |x_i - x_j| / (2 n^2 mean)
    x = np.random.default_rng(3).lognormal(0, 1.5, 400)
    g = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert concentration(x)["gini"] == pytest.approx(g, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Plot


@pytest.fixture(scope="module")
def heavy() -> dict:
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.lognormal(1, 1, 1600), plfit.sample(2.1, 5.0, 400, rng=rng)])
    return concentration(x)


def test_plot_png_and_svg(tmp_path: Path, heavy: dict) -> None:
    png = plot_concentration(heavy, tmp_path / "c.png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = plot_concentration(list(range(1, 60)), tmp_path / "c.svg")
    assert "<svg" in Path(svg).read_text()[:500]
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot_concentration(heavy, tmp_path / "c.pdf")


def test_plot_without_matplotlib(tmp_path: Path, heavy: dict, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "tailguard\[tail\]"'):
        plot_concentration(heavy, tmp_path / "c.png")


# --------------------------------------------------------------------------------------------
# CLI (--input route; the ledger route is the lead's entity_totals)


@pytest.fixture
def billing(tmp_path: Path) -> Path:
    p = tmp_path / "billing.csv"
    # customer a appears twice (two invoices): 1 + 9 = 10; totals 10, 2, 3, 4, 1
    p.write_text("customer,amount\na,1\nb,2.00\nc,3\nd,4\ne,1\na,9\n")
    return p


def test_cli_json(billing: Path, capsys) -> None:
    assert run(["concentration", "--input", str(billing), "--value-column", "amount",
                "--id-column", "customer", "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 5 and out["total"] == 20
    assert out["top_shares"]["1%"] == 0.5 and out["gini"] == pytest.approx(0.4)
    assert out["top"][0]["id"] == "a" and out["top"][0]["value"] == 10
    assert set(out) >= {"n", "total", "top_shares", "quantiles", "gini", "lorenz", "powerlaw",
                        "verdict"}  # fmt: skip


def test_cli_csv_and_plot(billing: Path, tmp_path: Path, capsys) -> None:
    png = tmp_path / "out.png"
    code = run(["concentration", "--input", str(billing), "--value-column", "amount",
                "--csv", "--plot", str(png)])  # fmt: skip
    assert code == 0 and png.exists()
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0] == "metric,value" and "n,6" in lines  # no --id-column: six rows
    assert "total,20.00" in lines
    assert f"wrote {png}" in cap.err


def test_cli_table(billing: Path, capsys) -> None:
    assert run(["concentration", "--input", str(billing), "--value-column", "amount"]) == 0
    out = capsys.readouterr().out
    assert "Top shares" in out and "heavy tail" in out


def test_cli_bad_rows(tmp_path: Path, capsys) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("customer,amount\na,1.5\nb,$3\nc,\nd,nan\ne,2\n")
    assert run(["concentration", "--input", str(p), "--value-column", "amount"]) == 1
    err = capsys.readouterr().err
    assert f"{p}:3: amount: not a number: '$3'" in err
    assert f"{p}:4: amount: empty" in err
    assert f"{p}:5: amount: not a number: 'nan'" in err
    assert "Traceback" not in err


def test_cli_missing_file_and_column(tmp_path: Path, billing: Path, capsys) -> None:
    missing = tmp_path / "nope.csv"
    assert run(["concentration", "--input", str(missing), "--value-column", "x"]) == 1
    assert capsys.readouterr().err == f"Error: {missing}: no such file\n"  # said once
    assert run(["concentration", "--input", str(billing), "--value-column", "cost"]) == 1
    assert f"{billing}:1: cost: no such column (columns: customer, amount)" in (
        capsys.readouterr().err
    )
    assert run(["concentration", "--input", str(billing)]) == 2  # usage: needs --value-column
    assert run(["concentration", "--input", str(billing), "--value-column", "amount",
                "--period", "2025-06"]) == 2  # fmt: skip


def test_cli_discrete_needs_integers(billing: Path, tmp_path: Path, capsys) -> None:
    p = tmp_path / "frac.csv"
    p.write_text("amount\n" + "\n".join(str(1.5 + i) for i in range(30)) + "\n")
    assert run(["concentration", "--input", str(p), "--value-column", "amount", "--discrete"]) == 1
    assert "integer" in capsys.readouterr().err


def test_isclose_helper_sanity() -> None:
    # guards the hand numbers above against a silent change of numpy's default quantile method
    assert float(np.quantile([1, 2, 3, 4, 10], 0.9)) == pytest.approx(7.6)
    assert math.ceil(0.01 / 100 * 10_000 - 1e-9) == 1
