"""Charts as server-rendered SVG: stacked bars, lines, the Lorenz curve, the log-log CCDF, bars.

Why SVG drawn here rather than a JavaScript library: every chart of the dashboard is a few
hundred marks at most (a year of days × four cost components is 1,460 bars), which SVG draws
instantly; the page then needs no script at all, works with no network, prints (the renewal
one-pager), and the test suite can count the marks in the HTML without a browser. Each mark
carries ``class="mark"`` and a ``<title>`` (the browser's own tooltip, the exact figure).

The charts only place numbers that the library computed (``tailguard.analytics``, or
``tailguard.ui.series`` for day-by-day sums); they compute nothing but pixel positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

__all__ = ["ccdf", "hbars", "lines", "lorenz", "stacked_bars"]

#: a restrained palette: slate blues for the model's own cost, warm tones for the human one
PALETTE = ("#3b5b92", "#8fa9d6", "#7fae8c", "#d4945c", "#a36fa6", "#c9b458", "#5f9ea0", "#b0b0b0")
INK = "#1f2933"
GRID = "#e4e7eb"
MUTED = "#7b8794"
ACCENT = "#b83232"

_M = {"l": 64, "r": 16, "t": 12, "b": 34}  # margins: left axis labels, bottom axis labels


def _num(v: float, unit: str = "") -> str:
    """A tick or tooltip figure: ``$1.2k``, ``$0.0042``, ``12%``."""
    if unit == "%":
        return f"{v:.0f}%" if abs(v) >= 10 or v == int(v) else f"{v:.1f}%"
    a = abs(v)
    if a >= 1e6:
        s = f"{v / 1e6:.1f}M"
    elif a >= 1e4:
        s = f"{v / 1e3:.0f}k"
    elif a >= 1e3:
        s = f"{v / 1e3:.1f}k"
    elif a >= 1 or a == 0:
        s = f"{v:,.2f}" if a < 100 else f"{v:,.0f}"
    else:
        s = f"{v:.2g}"
    return f"{unit}{s}" if unit == "$" else f"{s}{unit}"


def _ticks(hi: float, n: int = 4, lo: float = 0.0) -> list[float]:
    """Round steps from ``lo`` (0, or the first step below a negative ``lo``) up past ``hi``."""
    span = hi - lo
    raw = span / n
    if not raw > 0:  # nothing to span (or a span too small for a float step): the two ends
        return [lo] if span <= 0 else [lo, hi]
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [i * step for i in range(first, last + 1)]


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _legend(names: Sequence[str], colors: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{c}"></i>{escape(str(n))}</span>'
        for n, c in zip(names, colors, strict=False)
    )
    return f'<div class="legend">{items}</div>'


def _x_labels(x: Sequence[str], left: float, step: float, y: float, every: int) -> list[str]:
    out = []
    for i, lab in enumerate(x):
        if i % every == 0:
            out.append(
                f'<text x="{left + (i + 0.5) * step:.1f}" y="{y}" class="tick" '
                f'text-anchor="middle">{escape(str(lab))}</text>'
            )
    return out


def _y_axis(ticks: list[float], y_of: object, left: float, right: float, unit: str) -> list[str]:
    out = []
    for t in ticks:
        y = y_of(t)  # type: ignore[operator]
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{escape(_num(t, unit))}</text>"
        )
    return out


def stacked_bars(
    x: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    unit: str = "$",
    label: str = "stacked bars",
    width: int = 900,
    height: int = 240,
) -> Markup:
    """One bar per ``x`` (a day, a week), stacked by series in the order given, with a legend."""
    names = list(series)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    if not x:
        return Markup('<p class="empty">No spend in this window.</p>')
    tops = [sum(max(0.0, series[n][i]) for n in names) for i in range(len(x))]
    hi = max(tops) or 1.0
    ticks = _ticks(hi)
    hi = max(hi, ticks[-1])
    left, right, top, bottom = _M["l"], width - _M["r"], _M["t"], height - _M["b"]
    step = (right - left) / len(x)
    bar = max(step * 0.82, 0.6)

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / hi

    body = _y_axis(ticks, y_of, left, right, unit)
    for i, xi in enumerate(x):
        base = 0.0
        for n, c in zip(names, colors, strict=True):
            v = max(0.0, float(series[n][i]))
            if v <= 0:
                continue
            y0, y1 = y_of(base), y_of(base + v)
            body.append(
                f'<rect class="mark" data-series="{escape(n)}" x="{left + i * step:.2f}" '
                f'y="{y1:.2f}" width="{bar:.2f}" height="{max(y0 - y1, 0.3):.2f}" fill="{c}">'
                f"<title>{escape(str(xi))} · {escape(n)}: {escape(_num(v, unit))}</title></rect>"
            )
            base += v
    every = max(1, math.ceil(len(x) / 8))
    body += _x_labels(x, left, step, height - 12, every)
    return Markup(_legend(names, colors)) + _svg(width, height, body, label)


def lines(
    x: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    unit: str = "$",
    label: str = "lines",
    width: int = 900,
    height: int = 220,
) -> Markup:
    """One line per series over ``x``; a ``None`` breaks the line (no value that week)."""
    names = list(series)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    vals = [float(v) for n in names for v in series[n] if v is not None]
    if not x or not vals:
        return Markup('<p class="empty">Nothing to draw in this window.</p>')
    ticks = _ticks(max(vals) or 1.0, lo=min(0.0, min(vals)))
    lo, hi = ticks[0], ticks[-1]
    left, right, top, bottom = _M["l"], width - _M["r"], _M["t"], height - _M["b"]
    step = (right - left) / len(x)

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * (v - lo) / ((hi - lo) or 1.0)

    body = _y_axis(ticks, y_of, left, right, unit)
    for n, c in zip(names, colors, strict=True):
        runs: list[list[str]] = [[]]
        for i, v in enumerate(series[n]):
            if v is None:
                runs.append([])
                continue
            px, py = left + (i + 0.5) * step, y_of(float(v))
            runs[-1].append(f"{px:.1f},{py:.1f}")
            body.append(
                f'<circle class="mark" data-series="{escape(n)}" cx="{px:.1f}" cy="{py:.1f}" '
                f'r="2.6" fill="{c}"><title>{escape(str(x[i]))} · {escape(n)}: '
                f"{escape(_num(float(v), unit))}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                body.append(
                    f'<polyline class="line" points="{" ".join(run)}" fill="none" '
                    f'stroke="{c}" stroke-width="2"/>'
                )
    every = max(1, math.ceil(len(x) / 8))
    body += _x_labels(x, left, step, height - 12, every)
    return Markup(_legend(names, colors)) + _svg(width, height, body, label)


def hbars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    unit: str = "$",
    label: str = "bars",
    width: int = 440,
    colors: Sequence[str] | None = None,
) -> Markup:
    """Horizontal bars, one per label, longest first as given."""
    if not labels:
        return Markup('<p class="empty">Nothing in this window.</p>')
    row = 24
    height = row * len(labels) + 8
    left, right = 150, width - 70
    hi = max((float(v) for v in values), default=0.0) or 1.0
    body = []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = 4 + i * row
        w = max((right - left) * float(v) / hi, 0.5)
        c = (colors[i] if colors else None) or PALETTE[0]
        body.append(
            f'<text x="{left - 8}" y="{y + 15}" class="tick lab" text-anchor="end">'
            f"{escape(str(lab)[:22])}</text>"
            f'<rect class="mark" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
            f'fill="{c}"><title>{escape(str(lab))}: {escape(_num(float(v), unit))}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="tick">'
            f"{escape(_num(float(v), unit))}</text>"
        )
    return _svg(width, height, body, label)


def lorenz(points: Sequence[Sequence[float]], *, gini: float | None, size: int = 420) -> Markup:
    """The Lorenz curve from ``concentration``'s points, the line of equality, the gap shaded."""
    if not points:
        return Markup('<p class="empty">No spend to draw.</p>')
    m = 48
    inner = size - m - 14

    def xy(p: float, s: float) -> tuple[float, float]:
        return m + inner * p, 10 + inner * (1 - s)

    pts = [xy(float(a), float(b)) for a, b in points]
    path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
    x0, y0 = xy(0, 0)
    x1, y1 = xy(1, 1)
    body = []
    for t in (0, 0.25, 0.5, 0.75, 1):
        gx, gy = xy(t, t)
        body.append(
            f'<line x1="{m}" x2="{x1}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="{GRID}"/>'
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="10" y2="{y0}" stroke="{GRID}"/>'
            f'<text x="{m - 6}" y="{gy + 4:.1f}" class="tick" text-anchor="end">{t:.0%}</text>'
            f'<text x="{gx:.1f}" y="{y0 + 16}" class="tick" text-anchor="middle">{t:.0%}</text>'
        )
    body.append(
        f'<polygon points="{path} {x1:.1f},{y1:.1f}" fill="{ACCENT}" fill-opacity="0.10"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="{MUTED}" stroke-dasharray="4 4"/>'
        f'<polyline class="mark lorenz" points="{path}" fill="none" stroke="{ACCENT}" '
        f'stroke-width="2.2"><title>Lorenz curve, Gini '
        f"{'—' if gini is None else f'{gini:.3f}'}</title></polyline>"
        f'<text x="{m + 8}" y="28" class="note">Gini {"—" if gini is None else f"{gini:.2f}"}'
        "</text>"
    )
    return _svg(size, size + 14, body, "Lorenz curve")


def ccdf(
    points: Sequence[Sequence[float]],
    powerlaw: Mapping[str, object] | None,
    *,
    width: int = 480,
    height: int = 434,
) -> Markup:
    """The empirical P(X ≥ x) on log-log axes, the fitted power law from x_min, x_min marked."""
    pts = [(float(a), float(b)) for a, b in points if a > 0 and b > 0]
    if not pts:
        return Markup('<p class="empty">No positive spend to draw.</p>')
    left, right, top, bottom = 58, width - 14, 10, height - 34
    lx = [math.log10(a) for a, _ in pts]
    ly = [math.log10(b) for _, b in pts]
    x_lo, x_hi = math.floor(min(lx)), math.ceil(max(lx))
    y_lo = math.floor(min(ly))
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    y_lo = y_lo if y_lo < 0 else -1

    def px(v: float) -> float:
        return left + (right - left) * (math.log10(v) - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return top + (bottom - top) * (0 - math.log10(v)) / (0 - y_lo)

    body = []
    for e in range(x_lo, x_hi + 1):
        x = px(10.0**e)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="{GRID}"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" class="tick" text-anchor="middle">'
            f"{escape(_num(10.0**e, '$'))}</text>"
        )
    for e in range(y_lo, 1):
        y = py(10.0**e)
        body.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{10.0**e:.0%}</text>"
            if e >= -2
            else f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">1e{e}</text>'
        )
    for a, b in pts:
        body.append(
            f'<circle class="mark point" cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.8" '
            f'fill="{PALETTE[0]}" fill-opacity="0.75"><title>P(X ≥ {escape(_num(a, "$"))}) = '
            f"{b:.3g}</title></circle>"
        )
    if powerlaw:
        xmin = float(powerlaw["xmin"])  # type: ignore[arg-type]
        alpha = float(powerlaw["alpha"])  # type: ignore[arg-type]
        frac = float(powerlaw["n_tail"]) / max(float(powerlaw["n_fit"]), 1.0)  # type: ignore[arg-type]
        xe = max(pts[-1][0], xmin * 1.0001)
        fit = []
        for i in range(41):
            xv = xmin * (xe / xmin) ** (i / 40)
            yv = frac * (xv / xmin) ** (1.0 - alpha)
            if yv >= 10.0**y_lo:
                fit.append(f"{px(xv):.1f},{py(yv):.1f}")
        xm = px(xmin)
        body.append(
            f'<polyline class="mark fit" points="{" ".join(fit)}" fill="none" stroke="{ACCENT}" '
            f'stroke-width="2"><title>power law, alpha {alpha:.2f}</title></polyline>'
            f'<line class="mark xmin" x1="{xm:.1f}" x2="{xm:.1f}" y1="{top}" y2="{bottom}" '
            f'stroke="{ACCENT}" stroke-dasharray="3 3"><title>x_min = '
            f"{escape(_num(xmin, '$'))}</title></line>"
            f'<text x="{xm + 5:.1f}" y="{bottom - 8}" class="note">x_min '
            f"{escape(_num(xmin, '$'))}</text>"
            f'<text x="{right - 4}" y="{top + 16}" class="note" text-anchor="end">'
            f"α = {alpha:.2f}</text>"
        )
    return _svg(width, height, body, "CCDF of spend per customer, log-log")
