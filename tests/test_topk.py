"""tailguard.topk: how many entities "the top k%" is (ceil, at least one), by hand and by
invariant."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.topk import top_count


@pytest.mark.parametrize(
    ("n", "pct", "k"),
    [
        (250, 1, 3),  # 2.5 -> 3
        (99, 1, 1),  # 0.99 -> 1 (rounding down would make it nobody)
        (50, 1, 1),  # 0.5 -> at least one
        (100, 5, 5),  # exactly 5: float noise must not make it 6
        (2000, 5, 100),
        (7, 100, 7),
        (0, 5, 0),
        (1000, 0.1, 1),
    ],
)
def test_examples(n: int, pct: float, k: int) -> None:
    assert top_count(n, pct) == k


@pytest.mark.parametrize("pct", [0, -1, 100.5])
def test_pct_out_of_range(pct: float) -> None:
    with pytest.raises(ValueError, match="pct"):
        top_count(10, pct)


@given(st.integers(1, 10**6), st.integers(1, 10_000))
def test_smallest_count_covering_the_share(n: int, basis_points: int) -> None:
    """k is the smallest count, at least one, whose share of n reaches pct%: exact in integers
    (pct = basis_points / 100, so k/n >= pct/100 <=> 10_000 k >= basis_points n)."""
    pct = basis_points / 100
    k = top_count(n, pct)
    assert 1 <= k <= n
    assert 10_000 * k >= basis_points * n
    assert k == 1 or 10_000 * (k - 1) < basis_points * n
