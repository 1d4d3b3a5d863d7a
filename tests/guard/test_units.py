"""The guard's units (tailguard/guard/units.py): dollars in, micro-dollars counted, rounded up.

Every figure is worked out by hand in the test's docstring; the mutation run of issue 19 left
the float and string inputs of ``to_micro`` untested, and ``micro_in_range`` (the hot path's
bounds check) must refuse exactly what the ``Decimal`` comparisons refused.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.guard.units import MAX_USD, from_micro, micro_in_range, to_micro


def test_to_micro_rounds_up_from_any_input():
    """$0.0000011 is 1.1 micro-dollars: rounded up to 2 (the guard never undercounts).
    A float goes through ``str``: 0.1 is $0.1 exactly, 100,000 micro-dollars, not the binary
    0.1000000000000000055... (which would round up to 100,001). A string is read as a Decimal;
    an int is whole dollars: 3 -> 3,000,000."""
    assert to_micro(D("0.0000011")) == 2
    assert to_micro(0.1) == 100_000
    assert to_micro("0.0000011") == 2
    assert to_micro(3) == 3_000_000
    assert to_micro(D("-0.0000011")) == -1  # ceiling of -1.1 is -1


def test_from_micro_is_exact_dollars():
    """8,100 micro-dollars are $0.0081, exactly, six decimal places."""
    assert from_micro(8_100) == D("0.0081")
    assert str(from_micro(8_100)) == "0.008100"


@pytest.mark.parametrize(
    "usd,micro",
    [
        (D("0"), 0),
        (D("0.0000001"), 1),  # 0.1 micro-dollar, rounded up
        (D("0.0125"), 12_500),
        (MAX_USD, 10**15),  # the upper bound itself is accepted
        (D("999999999.9999991"), 10**15),  # 999,999,999,999,999.1 micro-dollars: up to 10^15
    ],
)
def test_micro_in_range_accepts(usd, micro):
    assert micro_in_range(usd) == micro


@pytest.mark.parametrize(
    "usd",
    [
        D("-0.0000001"),  # ceiling 0, but below $0: refused by the Decimal comparison
        D("-1"),
        D("1000000000.000001"),  # one micro-dollar past $1 billion
        D("1000000000.0000000000000000000000001"),  # ceiling lands on 10^15 after rounding
        D("NaN"),
        D("Infinity"),
        D("-Infinity"),
        D("1E+999999"),
        1,  # an int is not a Decimal: the slow road (why_invalid) decides
        0.5,
        "0.5",
        None,
    ],
)
def test_micro_in_range_refuses(usd):
    assert micro_in_range(usd) is None


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_micro_in_range_is_the_decimal_comparison(usd):
    """The one-multiplication check refuses exactly what ``is_finite() and 0 <= usd <= MAX_USD``
    refused, and accepts with ``to_micro``'s value."""
    ok = usd.is_finite() and 0 <= usd <= MAX_USD
    assert micro_in_range(usd) == (to_micro(usd) if ok else None)
