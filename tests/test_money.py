"""tailguard.money: the one rule for showing dollars (worked out by hand), and its invariants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.money import format_usd


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.565"), "$1,234.56"),  # half-even: ...565 -> ...56
        (Decimal("1234.575"), "$1,234.58"),  # half-even: ...575 -> ...58
        (Decimal("1"), "$1.00"),
        (Decimal("0"), "$0.00"),
        (Decimal("0.012345"), "$0.0123"),  # under a dollar: four decimals
        (Decimal("0.00005"), "$0.0000"),  # half-even to 4 places: 0.00005 -> 0.0000
        (Decimal("0.999999"), "$1.0000"),
        (Decimal("-12.5"), "-$12.50"),
        (Decimal("-0.00004"), "$0.0000"),  # rounds to zero: no "-$0.0000"
        (0.1, "$0.1000"),  # a float by its shortest repr, not 0.1000000000000000055...
        (2_500_000, "$2,500,000.00"),
        (None, "—"),  # no amount is not $0.00
    ],
)
def test_examples(value: Decimal | float | int | None, shown: str) -> None:
    assert format_usd(value) == shown


def test_without_symbol() -> None:
    assert format_usd(Decimal("-1234.5"), symbol=False) == "-1,234.50"


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=9, allow_nan=False))
def test_shown_value_is_within_half_a_step(d: Decimal) -> None:
    """Reading the text back gives the amount to within half the last shown digit."""
    text = format_usd(d)
    back = Decimal(text.replace("$", "").replace(",", ""))
    step = Decimal("0.01") if abs(d) >= 1 or d == 0 else Decimal("0.0001")
    assert abs(back - d) <= step / 2
    assert text.count("$") == 1 and (text.startswith("-") == (back < 0))
