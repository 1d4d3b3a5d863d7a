"""Benchmark: the full xmin scan of ``plfit.fit`` and the whole ``concentration`` report.

Usage::

    .venv/bin/python bench/bench_concentration.py [--sizes 50000 1000000] [--repeat 3]
        [--no-powerlaw] [--discrete]

Data: synthetic per-customer spend, a lognormal body (80%, median $20) and a Pareto tail
(20%, alpha 2.2 from $50), the shape the cost-concentration article describes. Values are unrounded
floats, so every one is a candidate xmin (the worst case for the scan); the discrete fit uses the
same spend in whole cents. Every size is timed ``--repeat`` times
(median shown) for the continuous fit, the discrete fit (values in cents, with ``--discrete``)
and the whole report (fit + lognormal and exponential likelihood ratios + shares). The
``powerlaw`` package (2.0, ``Fit(data)``: its full xmin scan) runs once at 50k on the totals
rounded to cents, the input where it takes 37-52 s here; ours runs on the same input with
``alpha_range=(0, 3)`` (the package's validity rule) and the fits are compared.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import timed
from rich.console import Console
from rich.table import Table

from tailguard.analytics import plfit
from tailguard.analytics.concentration import concentration


def spend(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = int(n * 0.8)
    body = rng.lognormal(np.log(20.0), 1.0, k)
    tail = 50.0 * (1.0 - rng.random(n - k)) ** (-1.0 / 1.2)
    return np.concatenate([body, tail])  # unrounded: every value is a candidate xmin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-powerlaw", action="store_true", help="skip the powerlaw package")
    ap.add_argument("--discrete", action="store_true", help="also time the discrete fit")
    args = ap.parse_args()

    plfit.fit(spend(1000))  # warm up imports
    plfit.fit(np.round(spend(1000) * 100), discrete=True)
    concentration(spend(1000))

    table = Table(title="Power-law fit with the full xmin scan (median of runs)")
    for col in ("n", "what", "seconds", "xmin", "alpha", "n_tail", "KS D"):
        table.add_column(col, justify="right" if col != "what" else "left")
    for n in args.sizes:
        x = spend(n)
        distinct = len(np.unique(x))
        sec, f = timed(lambda x=x: plfit.fit(x), args.repeat)
        table.add_row(
            f"{n:,}", f"tailguard fit ({distinct:,} candidates)", f"{sec:.3f}",
            f"{f.xmin:.2f}", f"{f.alpha:.4f}", f"{f.n_tail:,}", f"{f.ks_distance:.5f}",
        )  # fmt: skip
        if args.discrete:
            cents = np.round(x * 100)
            sec, g = timed(lambda c=cents: plfit.fit(c, discrete=True), args.repeat)
            table.add_row(
                f"{n:,}", f"tailguard discrete fit, cents ({len(np.unique(cents)):,})",
                f"{sec:.3f}", f"{g.xmin:.0f}", f"{g.alpha:.4f}", f"{g.n_tail:,}",
                f"{g.ks_distance:.5f}",
            )  # fmt: skip
        sec, r = timed(lambda x=x: concentration(x), args.repeat)
        pl = r["powerlaw"]
        table.add_row(
            f"{n:,}", "tailguard concentration() report", f"{sec:.3f}",
            f"{pl['xmin']:.2f}", f"{pl['alpha']:.4f}", f"{pl['n_tail']:,}",
            f"{pl['ks_distance']:.5f}",
        )  # fmt: skip
        if n == 50_000 and not args.no_powerlaw:
            # the package on customer totals in dollars and cents (fewer distinct values than
            # unrounded floats: ~14.5k candidates; on the unrounded 50k it took 300 s here)
            import powerlaw

            usd = np.round(x, 2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = time.perf_counter()
                ref = powerlaw.Fit(usd, verbose=0)
                sec = time.perf_counter() - t
                ref_alpha, ref_d = ref.power_law.alpha, ref.power_law.D
            table.add_row(
                f"{n:,}", f"powerlaw package Fit, cents ({len(np.unique(usd)):,}; one run)",
                f"{sec:.1f}", f"{ref.xmin:.2f}", f"{ref_alpha:.4f}", f"{len(ref.data):,}",
                f"{ref_d:.5f}",
            )  # fmt: skip
            sec, same = timed(lambda u=usd: plfit.fit(u, alpha_range=(0.0, 3.0)), args.repeat)
            table.add_row(
                f"{n:,}", "tailguard fit, same input, alpha_range=(0, 3)", f"{sec:.3f}",
                f"{same.xmin:.2f}", f"{same.alpha:.4f}", f"{same.n_tail:,}",
                f"{same.ks_distance:.5f}",
            )  # fmt: skip
            agree = same.xmin == ref.xmin and abs(same.alpha - ref_alpha) < 1e-9
            table.add_row("", f"identical xmin and alpha: {agree}", "", "", "", "", "")
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
