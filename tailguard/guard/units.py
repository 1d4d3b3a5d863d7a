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
_ONE = Decimal(1)
#: the largest dollar amount the guard accepts: a limit, one call's estimate or actual cost
MAX_USD = Decimal(1_000_000_000)
MAX_MICRO = 10**15
#: the largest token count the guard accepts: a limit, one call's input or output tokens
MAX_TOKENS = 10**12


def to_micro(usd: Decimal | int | str | float) -> int:
    """Dollars to integer micro-dollars, rounded up. Floats go through ``str`` (no binary noise)."""
    d = usd if isinstance(usd, Decimal) else Decimal(str(usd))
    return math.ceil(d * MICRO)  # Decimal.__ceil__: ROUND_CEILING to an int, in C


def from_micro(micro: int) -> Decimal:
    """Integer micro-dollars to exact ``Decimal`` dollars (six decimal places)."""
    return Decimal(micro).scaleb(-6)
