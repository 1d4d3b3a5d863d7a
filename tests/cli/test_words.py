"""The user's words: no help text, doc, README or message speaks of "seed 000" (a document the
user has never seen); sources are named by what a reader can find (README, "Sources")."""

from __future__ import annotations

import ast
import re

import pytest

from tailguard.cli import run
from tests.cli.helpers import COMMANDS
from tests.conftest import REPO

SEED = re.compile(r"seeds? 0\d", re.IGNORECASE)


@pytest.mark.parametrize("path", [(), *sorted(COMMANDS)], ids=lambda p: " ".join(p) or "root")
def test_help_names_no_seed(path: tuple[str, ...], capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert run([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out  # the help was printed: a check that cannot pass on nothing
    assert not SEED.findall(out)


def test_docs_and_readme_name_no_seed() -> None:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(files) >= 10
    found = [
        f"{f.relative_to(REPO)}:{n}: {line.strip()[:80]}"
        for f in files
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if SEED.search(line)
    ]
    assert found == []


def test_package_strings_name_no_seed() -> None:
    """Messages, help and docstrings: every string constant of the package (comments may keep
    provenance, in the same readable form)."""
    found = []
    for f in sorted((REPO / "tailguard").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and SEED.search(text):
                found.append(f"{f.relative_to(REPO)}:{node.lineno}")
    assert found == []


def test_readme_lists_the_sources() -> None:
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    for title in (
        "Per-Customer Cost Concentration: Why AI Cost Dashboards Hide the Power Law",
        "Agent Cost Metrics: Per-Task, Per-User Framework 2026",
        "Allocating AI Inference Costs Back to Individual Customers",
        "The Agent Budget That Approved Cost-Per-Call and Never Measured Cost-Per-Resolved-Task",
    ):
        assert title in text
