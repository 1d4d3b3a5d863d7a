"""Every command is documented: its --help (and -h) shows an example that runs it, and every read
command offers the same output options."""

from __future__ import annotations

import pytest

from tailguard.cli import run
from tests.cli.helpers import COMMANDS

#: commands that read the ledger (or a price) and report: the one output path's options
READ_COMMANDS = [
    ("report", "customers"),
    ("concentration",),
    ("kpis",),
    ("anomalies",),
    ("margins",),
    ("diagnose",),
    ("outcomes",),
    ("workload",),
    ("decide",),
    ("renewal",),
    ("digest",),
    ("price",),
    ("guard", "status"),
]


def test_the_walk_finds_every_command() -> None:
    """The walk sees nested groups (a walk that found nothing would pass every check below)."""
    assert len(COMMANDS) >= 20
    assert {("report", "customers"), ("customers", "import"), ("kpis",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_help_has_a_runnable_example(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one help line per source line
    assert run([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert run([*path, "-h"]) == 0
    assert capsys.readouterr().out == out
    lines = [ln.strip(" │") for ln in out.splitlines()]
    at = next((i for i, ln in enumerate(lines) if ln.startswith("Example")), None)
    assert at is not None, f"tailguard {' '.join(path)} --help has no Example line"
    # the example names the command itself, on the Example line or just under it
    near = " ".join(lines[at : at + 4])
    assert f"tailguard {' '.join(path)}" in near


@pytest.mark.parametrize("path", READ_COMMANDS, ids=" ".join)
def test_read_commands_share_the_output_options(path: tuple[str, ...]) -> None:
    opts = {o for p in COMMANDS[path].params for o in getattr(p, "opts", [])}
    assert {"--json", "--csv", "--columns", "--wide"} <= opts
