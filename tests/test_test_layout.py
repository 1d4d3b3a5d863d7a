"""Tests share helpers through helpers modules and conftest.py, never by importing a test module.

A test module imported by another ties the two together: moving, renaming or trimming one test
file breaks an unrelated one, and a reader cannot tell a shared helper from a local one.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: imports still to move into a helpers module (none left)
PENDING: set[str] = set()


def imported_test_modules(source: str) -> list[str]:
    """The ``tests...test_*`` modules that ``source`` imports."""
    out = []
    for node in ast.walk(ast.parse(source)):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        out += [
            n for n in names if n.startswith("tests.") and n.rsplit(".", 1)[-1].startswith("test_")
        ]
    return out


def test_no_test_module_imports_another() -> None:
    found = {
        f"{p.relative_to(TESTS.parent)}: {m}"
        for p in TESTS.rglob("*.py")
        for m in imported_test_modules(p.read_text())
        if m not in PENDING
    }
    assert sorted(found) == []


def test_the_scan_sees_both_import_forms() -> None:
    """A scan that found nothing would pass the check above: it must see ``from`` and plain
    imports of a test module, and not a helpers module or a conftest."""
    source = (
        "from tests.gateway.test_sigkill import ROOT\n"
        "import tests.events.test_two_paths\n"
        "from tests.gateway.helpers import oa\n"
        "from tests.gateway.conftest import Env\n"
    )
    assert imported_test_modules(source) == [
        "tests.gateway.test_sigkill",
        "tests.events.test_two_paths",
    ]
