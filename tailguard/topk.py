"""How many entities "the top k%" of n is: one rule for every report and the simulator.

The top k% of n entities is the ``ceil(k/100 x n)`` largest, and at least one: "the top 1%" of 250
customers is the top 3, of 50 customers the top one. Rounding up keeps the heaviest entity in
every top share, however few entities there are (rounding down would make "the top 1%" of 99
customers nobody). A tolerance of 1e-9 absorbs float noise, so 5% of 100 is 5, not 6.
"""

from __future__ import annotations

import math

from tailguard.errors import ArgumentError

__all__ = ["top_count"]


def top_count(n: int, pct: float) -> int:
    """The number of entities in the top ``pct``% of ``n`` (``0 < pct <= 100``; 0 when n is 0)."""
    if n < 0:
        raise ArgumentError("n", f"n must be >= 0, got {n}")
    if not 0 < pct <= 100:
        raise ArgumentError("pct", f"pct must be in (0, 100], got {pct}")
    if n == 0:
        return 0
    return min(n, max(1, math.ceil(pct / 100.0 * n - 1e-9)))
