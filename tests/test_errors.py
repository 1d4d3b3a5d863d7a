"""The one error tree: every TailguardError class is drawn in tailguard.errors' docstring, and the
CLI turns each kind into one message and one exit code."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import tailguard
from tailguard import errors
from tailguard.cli import run
from tailguard.errors import ArgumentError, TailguardError


def _all_subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def test_every_error_class_is_in_the_drawn_tree() -> None:
    for mod in pkgutil.walk_packages(tailguard.__path__, "tailguard."):
        if mod.name.endswith("__main__"):  # importing it runs the CLI
            continue
        try:
            importlib.import_module(mod.name)
        except (ImportError, TailguardError):  # an optional extra not installed here
            continue
    classes = {c for c in _all_subclasses(TailguardError) if c.__module__.startswith("tailguard")}
    assert {"PolicyError", "StoreUnavailableError", "UpstreamError"} <= {
        c.__name__ for c in classes
    }
    tree = errors.__doc__ or ""
    missing = sorted(c.__name__ for c in classes if not re.search(rf"\b{c.__name__}\b", tree))
    assert missing == [], f"not drawn in tailguard/errors.py's docstring: {missing}"


def test_upstream_errors_are_tailguard_errors() -> None:
    from tailguard.gateway.upstream import UpstreamError, UpstreamTimeout

    assert issubclass(UpstreamTimeout, UpstreamError)
    assert issubclass(UpstreamError, TailguardError) and UpstreamError.retryable


def test_argument_error_message() -> None:
    """The library names the parameter, never a flag; still a ValueError for old callers."""
    e = ArgumentError("period", "'June' is not a month (YYYY-MM)")
    assert str(e) == "period: 'June' is not a month (YYYY-MM)" and isinstance(e, ValueError)
    assert str(ArgumentError("days", "days must be at least 1")) == "days must be at least 1"
    assert e.exit_code == 2


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["kpis", "--period", "2026-13"], "Error: --period: '2026-13' is not a month (YYYY-MM)"),
        (
            ["margins", "--from", "yesterday"],
            "Error: --from: 'yesterday' is not a date (YYYY-MM-DD)",
        ),
        (["report", "customers", "--period", "2025-06", "--to", "2025-06-30"], None),
    ],
)
def test_a_bad_date_exits_2_everywhere(argv: list[str], line: str | None, capsys) -> None:
    """A usage error, checked before the ledger is opened (none exists here)."""
    assert run(argv) == 2
    err = capsys.readouterr().err
    if line is not None:
        assert err.strip().splitlines()[-1] == line


@pytest.mark.parametrize(
    "argv",
    [
        ["kpis", "--as-of", "2026-02-30"],
        ["anomalies", "--day", "20/02/2026"],
        ["decide", "A", "--as-of", "soon"],
        ["renewal", "A", "--as-of", "2026/01/01"],
        ["digest", "daily", "--day", "x"],
    ],
)
def test_a_bad_day_flag_exits_2(argv: list[str], capsys) -> None:
    assert run(argv) == 2
    assert "is not a date (YYYY-MM-DD)" in capsys.readouterr().err
