"""``--json`` writes every Decimal as a JSON number with its exact digits.

Before, a Decimal with more than 15 significant digits was written as a string and a shorter one
as a float, so one field (an exact quotient such as cost per successful task) could be a number in
one row and a string in the next: a consumer's ``jq '.[] | select(.x > 1)'`` broke on some rows.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tailguard.cli.output import dumps


def test_every_decimal_is_an_exact_number() -> None:
    rows = [
        {"x": Decimal(2) / Decimal(3)},  # 28 significant digits (Decimal's default context)
        {"x": Decimal("0.0105")},
        {"x": Decimal("123456789012345678.123456789")},  # past a float's 15-17 digits
        {"x": Decimal("0.000000400")},
    ]
    back = json.loads(dumps(rows), parse_float=Decimal, parse_int=Decimal)
    assert [type(r["x"]) for r in back] == [Decimal] * 4  # numbers, never strings
    assert back[0]["x"] == Decimal("0.6666666666666666666666666667")
    assert back[2]["x"] == Decimal("123456789012345678.123456789")
    assert back[3]["x"] == Decimal("4E-7")


def test_non_finite_decimal_is_null_and_paths_are_strings() -> None:
    out = json.loads(dumps({"a": Decimal("NaN"), "b": [Decimal("Infinity")], "p": Path("/x/y")}))
    assert out == {"a": None, "b": [None], "p": "/x/y"}
