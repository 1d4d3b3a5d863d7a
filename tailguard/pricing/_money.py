"""Exact money helpers shared by the row path (``Decimal``) and the bulk path (scaled integers).

Money is never touched by binary floating point. A price read from TOML goes through the float's
shortest ``repr`` into ``Decimal`` (``2.5`` stays ``2.5``, not ``2.5000000000000000001``); costs are
rounded once, half-even, to one nano-dollar (1e-9 USD), the ledger's ``DECIMAL(18, 9)`` scale.
The bulk path (``price_table``) works on ``int64`` amounts scaled by a power of ten and rounds with
the same rule, so both paths agree digit for digit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import numpy.typing as npt

#: one nano-dollar: the ledger's money scale (DECIMAL(18, 9))
NANO = Decimal("1e-9")
#: tokens in a "per million tokens" price
MTOK = Decimal(1_000_000)
#: costs at or above this many nano-dollars do not fit DECIMAL(18, 9)
MAX_NANO = 10**18 - 1


def round_usd(value: Decimal) -> Decimal:
    """Round a cost half-even to 1e-9 USD, the single rounding step of every cost."""
    return value.quantize(NANO, rounding=ROUND_HALF_EVEN)


def to_nano(value: Decimal) -> int:
    """An exact USD amount as an integer count of nano-dollars (rounded half-even)."""
    return int(round_usd(value).scaleb(9))


def scaled(value: Decimal, *, min_scale: int = 9) -> tuple[int, int]:
    """``value`` as ``(integer, scale)`` with ``value == integer * 10**-scale`` exactly.

    The scale is at least ``min_scale`` so that every amount can be rounded *down* to nano-dollars
    by an integer division (never multiplied up).
    """
    exp = value.normalize().as_tuple().exponent
    assert isinstance(exp, int)  # finite by construction
    scale = max(min_scale, -exp)
    return int(value.scaleb(scale)), scale


def div_round_half_even(
    x: npt.NDArray[np.int64], divisor: npt.NDArray[np.int64] | int
) -> npt.NDArray[np.int64]:
    """``x / divisor`` rounded half-even, element-wise, in exact integer arithmetic (x >= 0)."""
    q, r = np.divmod(x, divisor)
    twice = 2 * r
    up = (twice > divisor) | ((twice == divisor) & (q % 2 == 1))
    return q + up.astype(np.int64)
