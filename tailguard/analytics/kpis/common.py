"""What every KPI module shares: the status order, the metric and KPI shapes, percentages."""

from __future__ import annotations

from typing import Any

RANK = {"act": 3, "watch": 2, "ok": 1}
#: the note of a KPI that needs a policy; the CLI adds its flag
NO_POLICY = "no policy (a policy file, or TAILGUARD_POLICY)"


def worst(statuses: list[str]) -> str:
    """The most severe judged status; ``unknown`` when nothing could be judged."""
    judged = [s for s in statuses if s in RANK]
    if not judged:
        return "no_data" if statuses and all(s == "no_data" for s in statuses) else "unknown"
    return max(judged, key=RANK.__getitem__)


def pct(num: Any, den: Any) -> float | None:
    """``num`` as a percentage of ``den``, unrounded (a float's digits): the panel's JSON and
    CSV carry every digit and statuses judge the exact value; only the table rounds."""
    if num is None or not den:
        return None
    return float(num) / float(den) * 100


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def metric(
    id_: str, title: str, value: Any, unit: str, band: Any, status: str, **extra: Any
) -> dict[str, Any]:
    """One judged figure: ``{id, title, value, unit, band, status, **extra}``."""
    return {
        "id": id_,
        "title": title,
        "value": value,
        "unit": unit,
        "band": band,
        "status": status,
        **extra,
    }


def kpi(id_: str, title: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """A KPI: its lead (first) metric's value, unit and band, and its metrics' worst status."""
    lead = metrics[0]
    return {
        "id": id_,
        "title": title,
        "value": lead["value"],
        "unit": lead["unit"],
        "band": lead["band"],
        "status": worst([m["status"] for m in metrics]),
        "metrics": metrics,
    }
