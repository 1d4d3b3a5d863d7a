"""``tailguard guard status`` and ``guard check-policy`` through ``tailguard.cli.run``."""

from __future__ import annotations

import json
import os
import tomllib
from decimal import Decimal as D
from pathlib import Path

import pytest

from tailguard.cli import run
from tailguard.guard import Guard, MemoryStore, RedisStore, Request, load_policy

EXAMPLE = str(Path(__file__).parents[2] / "examples" / "policy.toml")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for k in list(os.environ):
        if k.startswith("TAILGUARD_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


def _spend(store, usd: str) -> None:
    g = Guard(load_policy(EXAMPLE), store)
    g.settle(g.check(Request("acme", D(usd))).reservation, D(usd))
    store.close()


def test_status_from_the_in_process_state(tmp_path, capsys):
    _spend(MemoryStore(tmp_path / "tailguard-data" / "guard"), "25")  # default LEDGER/guard
    assert run(["guard", "status", "acme", "--policy", EXAMPLE, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    # acme: pro tier with a $100 override; $25 spent -> $75 headroom, 25% used
    assert (st["tier"], st["spent"], st["hard_limit"], st["headroom"]) == ("pro", 25, 100, 75)
    assert st["utilization"] == 0.25 and st["overage"] == "soft_cap_degrade"
    assert run(["guard", "status", "acme", "--policy", EXAMPLE]) == 0
    assert "headroom" in capsys.readouterr().out


def test_status_from_redis(redis_server, capsys):
    s = RedisStore(redis_server.url)
    s.client.delete(*s.client.keys("tg:{acme}:*") or ["none"])
    _spend(s, "10")
    code = run(
        ["guard", "status", "acme", "--policy", EXAMPLE, "--redis-url", redis_server.url, "--json"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["spent"] == 10


def test_status_needs_a_policy(capsys):
    assert run(["guard", "status", "acme"]) == 1
    assert "no guard policy" in capsys.readouterr().err


def test_check_policy(tmp_path, capsys):
    assert run(["guard", "check-policy", EXAMPLE, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    with open(EXAMPLE, "rb") as fh:  # the file's own tables, in its order (read by tomllib)
        tiers = list(tomllib.load(fh)["tiers"])
    assert tiers[:4] == ["free", "pro", "team", "enterprise"]
    assert [t["tier"] for t in out["tiers"]] == tiers
    bad = tmp_path / "bad.toml"
    bad.write_text('[tiers.free]\noverage = "sometimes"\n')
    assert run(["guard", "check-policy", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "tiers.free.overage: must be one of hard_cap | soft_cap_degrade | payg" in err
    assert "Traceback" not in err


def test_every_guard_command_has_help_with_an_example(capsys):
    for cmd in ("status", "check-policy"):
        assert run(["guard", cmd, "-h"]) == 0
        assert "Example: tailguard guard" in capsys.readouterr().out
