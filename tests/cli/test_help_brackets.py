"""Help text keeps its square brackets: ``[env TAILGUARD_LEDGER; ...]`` is not Rich markup.

With Typer's default Rich markup, ``--ledger`` read "Ledger directory ." and ``decide --config``
lost ``[decide]``: every bracketed note (environment variable, default) vanished from the help.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tailguard.cli.app import app


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["report", "customers", "--help"], "[env TAILGUARD_LEDGER; default"),
        (["decide", "--help"], "[decide]"),
        (["guard", "status", "--help"], "[env TAILGUARD_REDIS_URL]"),
    ],
)
def test_bracketed_notes_survive(argv: list[str], needle: str) -> None:
    out = CliRunner().invoke(app, argv, env={"COLUMNS": "200"}).output
    assert needle in " ".join(out.split())  # wrapping may split the note over lines
