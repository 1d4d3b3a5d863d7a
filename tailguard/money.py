"""How an amount of money is shown to a person: one formatter for every table, line and page.

The rule (one, wherever dollars are printed):

- amounts of a dollar or more (and zero) in cents with thousands separators: ``$1,234.57``;
- amounts under a dollar with four decimals, because one LLM call costs a fraction of a cent and
  ``$0.00`` would hide it: ``$0.0123``;
- a negative amount carries its sign before the dollar sign: ``-$12.50``;
- no amount (``None``): an em dash, never ``$0.00`` (no data is not zero).

Rounding is half-even (banker's rounding) on the exact ``Decimal`` value; a float is first turned
into the shortest decimal that reads back as the same float, so ``0.1`` shows as ``$0.1000``.
Only display rounds: JSON and CSV outputs carry every digit the ledger holds.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["format_usd", "to_decimal"]

_CENTS = Decimal("0.01")
_SUB_CENT = Decimal("0.0001")


def to_decimal(value: Decimal | float | int) -> Decimal:
    """``value`` as an exact Decimal (a float via its shortest repr, never its binary expansion)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def format_usd(value: Decimal | float | int | None, *, symbol: bool = True) -> str:
    """``value`` dollars by the rule of this module; ``symbol=False`` leaves out the ``$`` (for a
    table column whose header already says the unit)."""
    if value is None:
        return "—"
    d = to_decimal(value)
    if not d.is_finite():
        return str(d)
    step = _CENTS if abs(d) >= 1 or d == 0 else _SUB_CENT
    q = abs(d).quantize(step, rounding=ROUND_HALF_EVEN)
    sign = "-" if d < 0 and q != 0 else ""
    return f"{sign}{'$' if symbol else ''}{q:,}"
