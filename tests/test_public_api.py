"""The package root's public API: sorted, importable, and nothing heavy at import time."""

from __future__ import annotations

import subprocess
import sys

import tailguard


def test_all_is_sorted_and_resolves() -> None:
    assert tailguard.__all__ == sorted(tailguard.__all__)
    assert set(tailguard.__all__) == set(tailguard._EXPORTS)
    for name in tailguard.__all__:
        assert getattr(tailguard, name) is not None, name


def test_import_is_light() -> None:
    code = (
        "import sys, tailguard; "
        "print(','.join(m for m in ('duckdb', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_report_is_public() -> None:
    """Issue 13: each report is a call of the package root, the query context with them."""
    reports = {"customer_report", "kpis", "margins", "anomalies", "decide", "renewal", "digest"}
    reports |= {"diagnose", "outcomes", "workload", "entity_totals", "concentration"}
    assert reports | {"QueryContext"} <= set(tailguard.__all__)
    assert tailguard.kpis.__module__ == "tailguard.analytics.kpis"
    assert tailguard.QueryContext.__module__ == "tailguard.analytics.context"
