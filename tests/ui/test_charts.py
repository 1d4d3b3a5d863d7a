"""The SVG charts place what they are given: one mark per non-zero value, heights in proportion,
axes whose ticks cover the data (a negative change included)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.ui import charts


def _rects(svg: str) -> list[dict[str, float]]:
    out = []
    for m in re.finditer(r'<rect class="mark"[^>]*>', svg):
        attrs = dict(re.findall(r'(\w+)="([-\d.]+)"', m.group(0)))
        out.append({k: float(v) for k, v in attrs.items()})
    return out


def test_stacked_bars_one_mark_per_nonzero_value_heights_in_proportion() -> None:
    svg = str(charts.stacked_bars(["d1", "d2", "d3"], {"a": [1.0, 0.0, 3.0], "b": [1.0, 2.0, 0.0]}))
    rects = _rects(svg)
    assert len(rects) == 4  # a@d1, b@d1, b@d2, a@d3: zeros draw nothing
    h = [r["height"] for r in rects]
    # heights are proportional to the values 1, 1, 2, 3 (in drawing order: d1 a, d1 b, d2 b, d3 a)
    assert h[2] / h[0] == pytest.approx(2.0, rel=1e-2)
    assert h[3] / h[0] == pytest.approx(3.0, rel=1e-2)
    # stacked: b sits on top of a on d1 (its bottom is a's top)
    assert rects[1]["y"] + rects[1]["height"] == pytest.approx(rects[0]["y"], abs=0.02)


def test_lines_axis_covers_a_negative_change() -> None:
    svg = str(charts.lines(["w1", "w2", "w3"], {"c": [0.0, -12.0, 25.0]}, unit="%"))
    labels = re.findall(r'class="tick" text-anchor="end">([^<]+)<', svg)
    assert labels[0].startswith("-") and labels[-1] in ("30%", "40%")
    assert svg.count('<circle class="mark"') == 3


def test_lines_break_at_none() -> None:
    svg = str(charts.lines(["w1", "w2", "w3", "w4"], {"c": [1.0, None, 2.0, 3.0]}))
    assert svg.count('<circle class="mark"') == 3
    assert svg.count("<polyline") == 1  # w1 alone draws no segment; w3-w4 one


def test_ccdf_marks_the_fit_and_xmin() -> None:
    pts = [[1.0, 1.0], [10.0, 0.1], [100.0, 0.01]]
    pl = {"xmin": 10.0, "alpha": 2.0, "n_tail": 2, "n_fit": 3}
    svg = str(charts.ccdf(pts, pl))
    assert svg.count('class="mark point"') == 3
    assert 'class="mark fit"' in svg and 'class="mark xmin"' in svg
    assert "x_min $10.00" in svg


def test_empty_inputs_say_so() -> None:
    assert "No spend" in str(charts.stacked_bars([], {}))
    assert "Nothing" in str(charts.lines([], {}))
    assert "No spend" in str(charts.lorenz([], gini=None))


@given(st.lists(st.floats(min_value=0, max_value=1e7), min_size=1, max_size=30))
def test_ticks_cover_the_data(values: list[float]) -> None:
    hi = max(values)
    ticks = charts._ticks(hi)
    assert ticks[0] == 0
    assert ticks[-1] >= hi
    assert len(ticks) <= 7
