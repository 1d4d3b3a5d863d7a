"""The KPI panel's healthy bands at their edges, from the eight-KPI framework's own words.

- Per-user cost: "the median paid-tier user spends 0.5 to 1.5% of their monthly seat price ...
  Above 3% and the seat price is funding the feature off margin": ok inside [0.5, 1.5], act
  above 3, watch elsewhere (below 0.5, or between 1.5 and 3).
- Cost-to-ARR: "Healthy band: 3 to 8% ... above 20% the contract needs revisiting": act above
  20, watch above 8, ok at or below 8.
- Overage rates, "Healthy band: 5 to 15% ... above 25%" for free users hitting the hard ceiling
  and for workspaces with a pay-as-you-go line, "Healthy band: 10 to 20% ... Above 30%" for pro
  traffic degraded after the soft threshold: ok inside the band, act above the alarm level.
"""

from __future__ import annotations

import pytest

from tailguard.analytics.kpis import RATE_BANDS, ordinal
from tailguard.analytics.kpis.budget import _median
from tailguard.analytics.kpis.per_tenant import _arr_status
from tailguard.analytics.kpis.per_user import _seat_status
from tailguard.analytics.kpis.routing import _rate_status


@pytest.mark.parametrize(
    ("pct", "status"),
    [
        (None, "no_data"),
        (0.49, "watch"),
        (0.5, "ok"),
        (1.0, "ok"),
        (1.5, "ok"),
        (1.51, "watch"),
        (3.0, "watch"),
        (3.01, "act"),
    ],
)
def test_seat_band(pct: float | None, status: str) -> None:
    assert _seat_status(pct) == status


@pytest.mark.parametrize(
    ("pct", "status"),
    [(0.0, "ok"), (8.0, "ok"), (8.01, "watch"), (20.0, "watch"), (20.01, "act")],
)
def test_cost_to_arr_band(pct: float, status: str) -> None:
    assert _arr_status(pct) == status


@pytest.mark.parametrize(
    ("pattern", "pct", "status"),
    [
        ("hard_cap", None, "no_data"),
        ("hard_cap", 4.99, "watch"),
        ("hard_cap", 5.0, "ok"),
        ("hard_cap", 15.0, "ok"),
        ("hard_cap", 15.01, "watch"),
        ("hard_cap", 25.0, "watch"),
        ("hard_cap", 25.01, "act"),
        ("soft_cap_degrade", 9.99, "watch"),
        ("soft_cap_degrade", 10.0, "ok"),
        ("soft_cap_degrade", 20.0, "ok"),
        ("soft_cap_degrade", 30.0, "watch"),
        ("soft_cap_degrade", 30.01, "act"),
        ("payg", 5.0, "ok"),
        ("payg", 25.01, "act"),
    ],
)
def test_overage_rate_bands(pattern: str, pct: float | None, status: str) -> None:
    assert _rate_status(pattern, pct) == status


def test_rate_bands_are_the_frameworks() -> None:
    got = {k: (b.low, b.high, b.alarm) for k, b in RATE_BANDS.items()}
    assert got == {"hard_cap": (5, 15, 25), "soft_cap_degrade": (10, 20, 30), "payg": (5, 15, 25)}


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    """[1, 2, 3, 10]: (2 + 3) / 2 = 2.5 (the mean would be 4); [5, 1, 3]: 3."""
    assert _median([10.0, 1.0, 3.0, 2.0]) == 2.5
    assert _median([5.0, 1.0, 3.0]) == 3.0


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (20, "20th"),
        (21, "21st"),
        (101, "101st"),
        (111, "111th"),
        (112, "112th"),
        (121, "121st"),
        (122, "122nd"),
    ],
)
def test_ordinal(n: int, text: str) -> None:
    assert ordinal(n) == text
