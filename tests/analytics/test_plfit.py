"""The Clauset-Shalizi-Newman fit against the paper, the ``powerlaw`` package, and brute force.

Published values: Clauset, Shalizi & Newman, "Power-law distributions in empirical data", SIAM
Review 51(4):661-703 (2009), arXiv:0706.1062, Table 6.1 (n, xmin ± err, alpha(err), n_tail ± err,
p) and Table 6.2 (normalised likelihood ratio R and its p against the lognormal and the
exponential). Transcribed from the paper in keflavich/plfit's test script and in
jeffalstott/powerlaw ``testing/test_reference_data.py`` (both quote the tables verbatim).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy.optimize import minimize_scalar

from tailguard.analytics import plfit

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "powerlaw"

# name: (file, discrete, factor, n, (xmin, err), (alpha, err), (n_tail, err), p)   Table 6.1
TABLE_6_1 = {
    "words": ("words.txt", True, 1.0, 18855, (7, 2), (1.95, 0.02), (2958, 987), 0.49),
    "terrorism": ("terrorism.txt", True, 1.0, 9101, (12, 4), (2.4, 0.2), (547, 1663), 0.68),
    "blackouts": ("blackouts.txt", False, 1e-3, 211, (230, 90), (2.3, 0.3), (59, 35), 0.62),
    "cities": ("cities.txt", False, 1e-3, 19447, (52.46, 11.88), (2.37, 0.08), (580, 177), 0.76),
    "flares": ("flares.txt", False, 1.0, 12773, (323, 89), (1.79, 0.02), (1711, 384), 1.00),
}
# name: ((R, p) vs lognormal, (R, p) vs exponential)   Table 6.2
TABLE_6_2 = {
    "words": ((0.395, 0.69), (9.09, 0.00)),
    "terrorism": ((-0.278, 0.78), (2.457, 0.01)),
    "blackouts": ((-0.412, 0.68), (1.21, 0.23)),
    "cities": ((-0.090, 0.93), (3.65, 0.00)),
    "flares": ((-0.803, 0.42), (13.7, 0.00)),
}
# Where our R differs from the printed one by more than 0.05 (or 2%), and why. Both are "undecided"
# (p > 0.1), the only reading the paper gives these two entries.
R_TOLERANCE = {
    # We find the global maximum of the truncated lognormal likelihood; for a pure power-law tail
    # it lies on the boundary where the lognormal *is* a power law, so R -> 0 (ours 0.06). The
    # paper's local optimiser stopped earlier on that ridge (0.395). Both p > 0.6.
    ("words", "lognormal"): 0.40,
    # 1.43 here and in the powerlaw package (its reference test notes "Clauset value is 1.21").
    ("blackouts", "exponential"): 0.25,
}


def load(name: str) -> tuple[np.ndarray, bool]:
    if not REAL.is_dir():
        pytest.skip(f"the paper's data sets are not at {REAL} (../shared/realdata is absent)")
    file, discrete, factor, *_ = TABLE_6_1[name]
    return np.loadtxt(REAL / file) * factor, discrete


@pytest.fixture(scope="module")
def paper_fits() -> dict[str, plfit.PowerLawFit]:
    out = {}
    for name in TABLE_6_1:
        x, discrete = load(name)
        out[name] = plfit.fit(x, discrete=discrete)
    return out


@pytest.mark.parametrize("name", list(TABLE_6_1))
def test_reproduces_table_6_1(name: str, paper_fits: dict[str, plfit.PowerLawFit]) -> None:
    _, _, _, n, (xmin, xerr), (alpha, aerr), (ntail, nerr), _ = TABLE_6_1[name]
    f = paper_fits[name]
    assert f.n == n
    assert abs(f.alpha - alpha) <= aerr
    assert abs(f.xmin - xmin) <= xerr
    assert abs(f.n_tail - ntail) <= nerr
    # In fact the point estimates agree to the printed precision.
    assert round(f.alpha, 2 if aerr < 0.1 else 1) == pytest.approx(alpha)
    assert f.xmin == pytest.approx(xmin, abs=0.005)
    assert f.n_tail == ntail


@pytest.mark.parametrize("name", list(TABLE_6_2))
@pytest.mark.parametrize("alt", ["lognormal", "exponential"])
def test_reproduces_table_6_2(
    name: str, alt: str, paper_fits: dict[str, plfit.PowerLawFit]
) -> None:
    x, _ = load(name)
    r_pub, p_pub = TABLE_6_2[name][0 if alt == "lognormal" else 1]
    lr = plfit.compare(x, paper_fits[name], alt)  # type: ignore[arg-type]
    assert abs(lr.R - r_pub) <= R_TOLERANCE.get((name, alt), max(0.05, 0.02 * abs(r_pub)))
    # the conclusion the paper draws: significant (p < 0.1) with the same sign, or undecided
    assert (lr.p < 0.1) == (p_pub < 0.1)
    if p_pub < 0.1:
        assert math.copysign(1, lr.R) == math.copysign(1, r_pub)
    # p is the two-sided normal tail of the normalised R
    assert lr.p == pytest.approx(math.erfc(abs(lr.R) / math.sqrt(2)))


@pytest.mark.parametrize(("name", "n_boot", "tol"), [("blackouts", 400, 0.1), ("flares", 40, 0.05)])
def test_bootstrap_p_value_matches_table_6_1(
    name: str, n_boot: int, tol: float, paper_fits: dict[str, plfit.PowerLawFit]
) -> None:
    x, _ = load(name)
    p_pub = TABLE_6_1[name][-1]
    p = plfit.bootstrap_p_value(x, paper_fits[name], n_boot=n_boot, seed=7)
    assert abs(p - p_pub) <= tol  # 400 draws: s.e. 0.024 at p = 0.62


def test_bootstrap_words_reaches_the_papers_conclusion(
    paper_fits: dict[str, plfit.PowerLawFit],
) -> None:
    # Published p = 0.49; we get 0.77 with 200 draws (docs/concentration.md): the same reading,
    # "power law plausible" (p > 0.1). 40 draws keep the test short.
    x, _ = load("words")
    assert plfit.bootstrap_p_value(x, paper_fits["words"], n_boot=40, seed=1) > 0.1


def test_bootstrap_discrete_terrorism(paper_fits: dict[str, plfit.PowerLawFit]) -> None:
    x, _ = load("terrorism")
    p = plfit.bootstrap_p_value(x, paper_fits["terrorism"], n_boot=150, seed=3)
    assert abs(p - 0.68) <= 0.15  # s.e. 0.04 with 150 draws


# --------------------------------------------------------------------------------------------
# Against the powerlaw package (the reference implementation in Python) on modest n


def mixture(n: int, seed: int, alpha: float = 2.2) -> np.ndarray:
    """A lognormal body and a Pareto tail: the shape of per-customer spend."""
    rng = np.random.default_rng(seed)
    k = int(n * 0.8)
    tail = 50.0 * (1.0 - rng.random(n - k)) ** (-1.0 / (alpha - 1.0))
    return np.concatenate([rng.lognormal(3.0, 1.0, k), tail])


@pytest.mark.parametrize("seed", [0, 1])
def test_continuous_matches_powerlaw_package(seed: int) -> None:
    powerlaw = pytest.importorskip("powerlaw")
    x = mixture(1500, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = powerlaw.Fit(x, verbose=0)
        ref_alpha, ref_d = ref.power_law.alpha, ref.power_law.D
        ref_exp = ref.distribution_compare("power_law", "exponential", normalized_ratio=True)
        ref_ln_ll = float(np.sum(ref.lognormal.loglikelihoods(ref.data)))
    # powerlaw 2.0 ignores candidates whose alpha is outside (0, 3) when choosing xmin
    f = plfit.fit(x, alpha_range=(0.0, 3.0))
    assert f.xmin == ref.xmin
    assert f.alpha == pytest.approx(ref_alpha, rel=1e-10)
    assert f.ks_distance == pytest.approx(ref_d, rel=1e-9)
    assert f.n_tail == len(ref.data)
    assert f.sigma == pytest.approx((ref_alpha - 1) / math.sqrt(len(ref.data)))
    assert pytest.approx(ref_exp[0], rel=1e-3) == plfit.compare(x, f, "exponential").R
    # Our lognormal maximum is at least as high as the package's (it is the global one).
    tail = x[x >= f.xmin]
    pl_ll = float(np.sum(plfit._loglik_powerlaw(tail, f)))
    ours = plfit.compare(x, f, "lognormal")
    ours_ln_ll = pl_ll - ours.raw
    assert ours_ln_ll >= ref_ln_ll - 1e-6


def test_discrete_matches_powerlaw_package() -> None:
    powerlaw = pytest.importorskip("powerlaw")
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [rng.geometric(0.3, 1200), np.floor(5 * (1 - rng.random(400)) ** (-1 / 1.3))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = powerlaw.Fit(x, discrete=True, estimate_discrete=False, verbose=0)
        ref_alpha = ref.power_law.alpha
    f = plfit.fit(x, discrete=True, alpha_range=(0.0, 3.0))
    assert f.xmin == ref.xmin
    # the package maximises numerically (tolerance ~1e-5); ours solves the score to 1e-10
    assert f.alpha == pytest.approx(ref_alpha, abs=1e-4)


# --------------------------------------------------------------------------------------------
# By hand and by brute force


def test_hand_computed_fit() -> None:
    # x = 1, 2, 4 with xmin = 1: alpha = 1 + 3 / (ln 1 + ln 2 + ln 4) = 1 + 1 / ln 2.
    # F(b) = 1 - b^(1 - alpha) = 1 - exp(-log2(b)): F(2) = 1 - 1/e vs 1/3, F(4) = 1 - 1/e^2 vs
    # 2/3; D = max(0.6321 - 0.3333, 0.8647 - 0.6667) = 1 - 1/e - 1/3.
    f = plfit.fit([1.0, 2.0, 4.0], xmin=1.0)
    assert f.alpha == pytest.approx(1 + 1 / math.log(2))
    assert f.ks_distance == pytest.approx(1 - math.exp(-1) - 1 / 3)
    assert f.n_tail == 3
    assert f.sigma == pytest.approx((1 / math.log(2)) / math.sqrt(3))


def test_fixed_xmin_below_the_data() -> None:
    # x = 2, 4 with xmin = 1 (not observed): alpha = 1 + 2 / (ln 2 + ln 4) = 1 + 2 / (3 ln 2);
    # F(2) = 1 - exp(-2/3) vs 0 below, F(4) = 1 - exp(-4/3) vs 1/2: D = 1 - exp(-2/3)
    f = plfit.fit([2.0, 4.0, 0.5], xmin=1.0)
    assert f.xmin == 1.0 and f.n_tail == 2 and f.n == 3
    assert f.alpha == pytest.approx(1 + 2 / (3 * math.log(2)))
    assert f.ks_distance == pytest.approx(1 - math.exp(-2 / 3))


@pytest.mark.parametrize("discrete", [False, True])
def test_scan_agrees_with_the_fixed_xmin_path(discrete: bool) -> None:
    # the vectorised scan and the direct one-candidate computation are two routes to one number
    x = np.floor(mixture(3000, 8)) if discrete else mixture(3000, 8)
    f = plfit.fit(x, discrete=discrete)
    g = plfit.fit(x, discrete=discrete, xmin=f.xmin)
    assert (g.alpha, g.n_tail) == (pytest.approx(f.alpha, rel=1e-9), f.n_tail)
    assert g.ks_distance == pytest.approx(f.ks_distance, abs=1e-12)
    assert g.sigma == pytest.approx(f.sigma, rel=1e-6)


def test_discrete_mle_against_a_scalar_optimiser() -> None:
    rng = np.random.default_rng(2)
    x = plfit.sample(2.5, 3.0, 3000, discrete=True, rng=rng)
    f = plfit.fit(x, discrete=True, xmin=3.0)
    t = x[x >= 3]

    def nll(a: float) -> float:
        return float(a * np.log(t).sum() + len(t) * math.log(sp.zeta(a, 3.0)))

    ref = minimize_scalar(nll, bounds=(1.01, 6), method="bounded", options={"xatol": 1e-10})
    assert f.alpha == pytest.approx(ref.x, abs=1e-6)
    # eq. 3.6: sigma = 1 / sqrt(n [zeta''/zeta - (zeta'/zeta)^2]), by finite differences here
    h = 1e-3
    g = [math.log(sp.zeta(f.alpha + d, 3.0)) for d in (-h, 0.0, h)]
    assert f.sigma == pytest.approx(
        1 / math.sqrt(len(t) * (g[0] - 2 * g[1] + g[2]) / h**2), rel=1e-4
    )


def brute_force(x: np.ndarray, discrete: bool) -> tuple[float, float]:
    """The definition, directly: every candidate, every distinct tail value. (D, xmin)."""
    x = np.sort(x[x > 0])
    u = np.unique(x)
    best = (math.inf, math.nan)
    for xmin in u[:-1]:
        t = x[x >= xmin]
        if discrete:
            a = minimize_scalar(
                lambda a, t=t, q=xmin: a * np.log(t).sum() + len(t) * math.log(sp.zeta(a, q)),
                bounds=(1.0001, 100),  # the fit caps the exponent at 100 too
                method="bounded",
                options={"xatol": 1e-12},
            ).x
            cdf = 1 - sp.zeta(a, np.unique(t)) / sp.zeta(a, xmin)
        else:
            a = 1 + len(t) / np.sum(np.log(t / xmin))
            cdf = 1 - (np.unique(t) / xmin) ** (1 - a)
        below = np.searchsorted(t, np.unique(t), side="left") / len(t)
        d = float(np.max(np.abs(cdf - below)))
        if d < best[0] - 1e-9:
            best = (d, float(xmin))
    return best


@settings(max_examples=40, deadline=None)
@given(
    seed=hs.integers(0, 10_000),
    n=hs.integers(5, 150),
    decimals=hs.sampled_from([0, 1, 3]),
)
def test_scan_finds_the_exact_minimum_continuous(seed: int, n: int, decimals: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.round(rng.pareto(1.3, n) + 1.0 + rng.lognormal(0, 1, n) * (rng.random(n) < 0.5), 3)
    x = np.round(x, decimals) + 10.0**-decimals  # ties, and no zeros
    if len(np.unique(x)) < 2:
        return
    d, xmin = brute_force(x, discrete=False)
    f = plfit.fit(x)
    assert f.ks_distance == pytest.approx(d, abs=1e-9)
    assert f.xmin == pytest.approx(xmin) or f.ks_distance == pytest.approx(d, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=hs.integers(0, 10_000), n=hs.integers(10, 120))
def test_scan_finds_the_exact_minimum_discrete(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.floor(2 * (1 - rng.random(n)) ** (-1 / 1.5))
    if len(np.unique(x)) < 2:
        return
    d, _ = brute_force(x, discrete=True)
    assert plfit.fit(x, discrete=True).ks_distance == pytest.approx(d, abs=1e-6)


def test_scan_on_more_candidates_than_one_grid() -> None:
    # 4,000 distinct values: the branch and bound must prune, and still find the true minimum.
    x = mixture(4000, 11)
    d, xmin = brute_force(x, discrete=False)
    f = plfit.fit(x)
    assert (f.ks_distance, f.xmin) == (pytest.approx(d, abs=1e-12), xmin)


# --------------------------------------------------------------------------------------------
# Sampling, alternatives, edge cases


def test_sampling_recovers_the_exponent() -> None:
    rng = np.random.default_rng(0)
    c = plfit.sample(2.5, 1.0, 20_000, rng=rng)
    f = plfit.fit(c, xmin=1.0)
    assert abs(f.alpha - 2.5) < 4 * f.sigma
    d = plfit.sample(2.5, 5.0, 20_000, discrete=True, rng=rng)
    assert d.min() == 5 and np.all(d == np.round(d))
    # P(X = 5) = 5^-2.5 / zeta(2.5, 5)
    assert np.mean(d == 5) == pytest.approx(5**-2.5 / sp.zeta(2.5, 5.0), abs=0.012)
    g = plfit.fit(d, discrete=True, xmin=5.0)
    assert abs(g.alpha - 2.5) < 4 * g.sigma


def test_lognormal_chart_matches_scipy() -> None:
    # the (a, b) parametrisation is the truncated lognormal, checked against scipy.stats
    mu, s, xmin = 1.3, 1.7, 7.0
    t = np.array([7.0, 8.0, 15.0, 60.0, 400.0])
    b, a = 1 / (2 * s * s), -(mu - math.log(xmin)) / (s * s)
    got = plfit._lognormal_tail_ll(sp, np.log(t / xmin), a, b, None) - np.log(t)
    dist = st.lognorm(s, scale=math.exp(mu))
    assert got == pytest.approx(dist.logpdf(t) - np.log(dist.sf(xmin)), abs=1e-12)
    x0 = xmin - 0.5
    a = -(mu - math.log(x0)) / (s * s)
    got = plfit._lognormal_tail_ll(sp, np.log((t - 0.5) / x0), a, b, np.log((t + 0.5) / x0))
    want = np.log(dist.sf(t - 0.5) - dist.sf(t + 0.5)) - np.log(dist.sf(x0))
    assert got == pytest.approx(want, abs=1e-10)


def test_vuong_prefers_the_true_model() -> None:
    rng = np.random.default_rng(4)
    expo = 10 + rng.exponential(5.0, 3000)
    f = plfit.fit(expo, xmin=10.0)
    lr = plfit.compare(expo, f, "exponential")
    assert lr.R < 0 and lr.p < 0.01
    pareto = plfit.sample(2.0, 10.0, 3000, rng=rng)
    g = plfit.fit(pareto, xmin=10.0)
    assert plfit.compare(pareto, g, "exponential").R > 3
    ln = rng.lognormal(2.0, 0.6, 5000)
    h = plfit.fit(ln, xmin=float(np.quantile(ln, 0.2)))
    lr = plfit.compare(ln, h, "lognormal")
    assert lr.R < 0 and lr.p < 0.01
    assert lr.params["mu"] == pytest.approx(2.0, abs=0.1)
    assert lr.params["sigma"] == pytest.approx(0.6, abs=0.05)


def test_edge_cases() -> None:
    with pytest.raises(ValueError, match="two distinct"):
        plfit.fit([3.0, 3.0, 0.0, -1.0])
    with pytest.raises(ValueError, match="integer"):
        plfit.fit([1.5, 2.0, 3.0], discrete=True)
    f = plfit.fit([0.0, -2.0, 1.0, 2.0, 4.0, float("nan")])
    assert f.n == 3  # non-positive and NaN values are not part of a power law
    with pytest.raises(ValueError, match="n_boot"):
        plfit.bootstrap_p_value([1.0, 2.0, 4.0], f, n_boot=0)
