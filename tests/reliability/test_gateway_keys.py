"""Virtual keys under change (issue 16, F6, F7, F8): a revoked key stops working within a second,
a keys file that cannot be read during a reload keeps the last good set, and concurrent
``keys create`` store every key they print."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tailguard.cli.app import run
from tailguard.gateway.keys import create_key, hash_key, load_keys
from tests.gateway.conftest import Env, write_config

MSG = [{"role": "user", "content": "hi"}]


def _status(env: Env, key: str) -> int:
    async def main() -> int:
        async with env.http() as c:
            r = await c.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 1},
                headers={"authorization": f"Bearer {key}"},
            )
            return r.status_code

    return asyncio.run(main())


def test_revoked_key_is_refused_within_a_second(
    make_env: Callable[..., Env], capsys: pytest.CaptureFixture[str]
) -> None:
    env = make_env()
    other = env.new_key("globex")
    assert _status(env, env.key) == 200
    assert run(["keys", "list", "--config", str(env.cfg_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["customer_id"] for r in rows) == ["acme", "globex"]
    assert all(env.key not in json.dumps(r) for r in rows)  # no secret is listed
    [acme] = [r for r in rows if r["customer_id"] == "acme"]
    assert acme["id"] == hash_key(env.key)[:12]
    assert run(["keys", "revoke", acme["id"], "--config", str(env.cfg_path)]) == 0
    time.sleep(1.0)  # the promise: within a second
    assert _status(env, env.key) == 401
    assert _status(env, other) == 200  # the other keys keep working
    # revoking again, or a key that never existed: one line, exit 1
    assert run(["keys", "revoke", env.key, "--config", str(env.cfg_path)]) == 1
    assert "no key matches" in capsys.readouterr().err
    asyncio.run(env.close())


def test_keys_list_csv(make_env: Callable[..., Env], capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env()
    capsys.readouterr()
    assert run(["keys", "list", "--config", str(env.cfg_path), "--csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "id,name,customer_id,user_id,created"
    assert lines[1].startswith(hash_key(env.key)[:12] + ",") and ",acme," in lines[1]
    asyncio.run(env.close())


def test_unreadable_keys_file_keeps_the_last_good_set(
    make_env: Callable[..., Env], caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env()
    keys_file = env.gw.cfg.keys
    good = keys_file.read_text()
    keys_file.write_text('{"keys": {')  # an operator's half-written edit
    env.gw.keyring._checked = 0.0  # as if the check interval had passed
    with caplog.at_level(logging.WARNING, logger="tailguard.gateway.keys"):
        assert _status(env, "tg-unknown") == 401  # was a 500
        assert _status(env, env.key) == 200
    assert any("keeping the 1 keys loaded before" in r.getMessage() for r in caplog.records)
    # fixed: the file is read again and a key added since works
    keys_file.write_text(good)
    late = create_key(keys_file, "initech")
    env.gw.keyring._checked = 0.0
    assert _status(env, late) == 200
    asyncio.run(env.close())


def test_concurrent_creates_store_every_key(tmp_path: Path) -> None:
    """8 writers x 5 keys: 40 keys printed, 40 stored (the probe: 8 creates stored 2)."""
    keys_file = tmp_path / "keys.json"

    def writer(w: int) -> list[str]:
        return [create_key(keys_file, f"cust-{w}") for _ in range(5)]

    with cf.ThreadPoolExecutor(8) as ex:
        issued = [k for ks in ex.map(writer, range(8)) for k in ks]
    stored = load_keys(keys_file)
    assert len(issued) == 40 and {hash_key(k) for k in issued} == set(stored)
    assert not list(tmp_path.glob("*.tmp"))


def test_concurrent_create_processes(tmp_path: Path) -> None:
    """The same through the CLI, 8 processes at once (as the probe ran it)."""
    import os
    import subprocess
    import sys

    cfg = write_config(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-m", "tailguard", "keys", "create", "--config", str(cfg), "--customer"]
    procs = [
        subprocess.Popen([*cmd, f"c{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for i in range(8)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e.decode()[-300:] for _, e in outs]
    printed = {o.decode().strip() for o, _ in outs}
    assert {hash_key(k) for k in printed} == set(load_keys(tmp_path / "keys.json"))
