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


#: built-in exceptions raised on purpose that never reach a caller, each with why
_INTERNAL = {
    # msgspec turns a ValueError raised in __post_init__ into its ValidationError, which the
    # readers report as file:line: field: reason
    ("tailguard/events/schema.py", "ValueError"),
    # parsed inside the customers CSV reader, reported as file:line: field: reason
    ("tailguard/customers.py", "ValueError"),
    # caught where bodies are decoded: an unknown encoding leaves the call unmeasured, not broken
    ("tailguard/sdk/instrument.py", "ValueError"),
}
_BUILTIN = {"ValueError", "RuntimeError", "KeyError", "OSError", "Exception", "LookupError"}


def test_no_builtin_error_reaches_a_caller() -> None:
    """Every error tailguard raises for a caller is a TailguardError (ArgumentError is also a
    ValueError); a bare built-in is allowed only where it is caught inside (listed above)."""
    import ast

    from tests.conftest import REPO

    found = []
    for f in sorted((REPO / "tailguard").rglob("*.py")):
        rel = str(f.relative_to(REPO))
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            exc = node.exc if isinstance(node, ast.Raise) else None
            func = exc.func if isinstance(exc, ast.Call) else None
            name = func.id if isinstance(func, ast.Name) else None
            if name in _BUILTIN and (rel, name) not in _INTERNAL:
                found.append(f"{rel}:{node.lineno}: {name}")
    assert found == []
