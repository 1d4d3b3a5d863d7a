"""The gateway's commands: help with an example, keys created hashed, config errors as exit 1."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tailguard.cli.app import run
from tailguard.gateway.config import hash_key, load_config
from tests.gateway.conftest import write_config


@pytest.mark.parametrize(
    "cmd",
    [["gateway"], ["mock-upstream"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"]],
    ids=lambda c: "-".join(c),
)
def test_help_has_an_example(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*cmd, "--help"]) == 0
    assert "Example: tailguard " + " ".join(cmd) in capsys.readouterr().out


def test_keys_create_stores_only_the_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path)
    assert (
        run(
            ["keys", "create", "--customer", "acme", "--user", "u1", "--config", str(cfg), "--json"]
        )
        == 0
    )
    key = json.loads(capsys.readouterr().out)["key"]
    keys_file = load_config(cfg).keys
    stored = json.loads(keys_file.read_text())["keys"]
    assert list(stored) == [hash_key(key)]
    assert stored[hash_key(key)]["customer_id"] == "acme"
    assert key not in keys_file.read_text()
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600


def test_config_errors_are_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["keys", "create", "--customer", "a", "--config", str(tmp_path / "nope.toml")]) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[[upstream]]\nprovider = "cohere"\nbase_url = "http://x"\n')
    assert run(["gateway", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and "upstream[0].provider" in err
