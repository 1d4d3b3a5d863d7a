"""The guard's units: integer micro-dollars inside the stores, ``Decimal`` dollars outside.

Why micro-dollars: Redis counters (``HINCRBY``) and Lua numbers are integers / doubles, exact up to
2^53 micro-dollars (about $9 billion), and a micro-dollar is far below any single LLM call's cost
that matters for a budget. Why round up (``ROUND_CEILING``): the guard must never undercount
spend; rounding every estimate and every actual cost up to the next micro-dollar makes the
guard's count at most $0.000001 per call above the ledger's nano-dollar figure, never below.

Why bounds: every number the stores count must stay exact in Lua (doubles, exact to 2^53 ≈ 9.0e15)
and encodable by the msgpack plan (at most 2^64). A limit, an estimate or an actual cost above
``MAX_USD`` ($1 billion, 10^15 micro-dollars), or a token count above ``MAX_TOKENS`` (10^12), is
refused where it enters (the policy at load, a request at check) so one bad number fails alone
instead of breaking the shared store for every customer.
"""

from __future__ import annotations

import math
from decimal import Decimal

MICRO = Decimal(1_000_000)
#: the largest dollar amount the guard accepts: a limit, one call's estimate or actual cost
MAX_USD = Decimal(1_000_000_000)
MAX_MICRO = 10**15
#: the largest token count the guard accepts: a limit, one call's input or output tokens
MAX_TOKENS = 10**12


def to_micro(usd: Decimal | int | str | float) -> int:
    """Dollars to integer micro-dollars, rounded up. Floats go through ``str`` (no binary noise)."""
    d = usd if isinstance(usd, Decimal) else Decimal(str(usd))
    return math.ceil(d * MICRO)  # Decimal.__ceil__: ROUND_CEILING to an int, in C


def micro_in_range(usd: object) -> int | None:
    """``to_micro(usd)`` when ``usd`` is a finite ``Decimal`` from 0 to ``MAX_USD``, else None.

    Why: this runs twice on every call (the estimate at check, the actual at settle), and one
    multiplication then integer comparisons cost less than ``is_finite`` and two ``Decimal``
    comparisons. The bounds stay exact: ``usd <= MAX_USD`` exactly when ``ceil(usd × 10^6) <=
    10^15`` (10^15 is whole), and ``usd >= 0`` when the ceiling is above 0; a ceiling of 0 or of
    exactly 10^15 (any ``usd`` in (−10^-6, 0], or a value the context rounded onto the upper
    bound) is settled by comparing the ``Decimal`` itself. NaN and infinities raise, hence None.
    """
    if type(usd) is not Decimal:
        return None
    try:
        m = math.ceil(usd * MICRO)
    except (ArithmeticError, ValueError):  # NaN, infinity, an exponent out of range
        return None
    if 0 < m < MAX_MICRO or ((m == 0 or m == MAX_MICRO) and 0 <= usd <= MAX_USD):
        return m
    return None


def from_micro(micro: int) -> Decimal:
    """Integer micro-dollars to exact ``Decimal`` dollars (six decimal places)."""
    return Decimal(micro).scaleb(-6)
