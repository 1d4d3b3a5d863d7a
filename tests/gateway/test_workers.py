"""Two gateway worker processes share one budget through Redis: never past the hard limit."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tailguard.gateway.config import create_key
from tailguard.ledger.store import Ledger
from tests.gateway.conftest import POLICY, free_port, write_config
from tests.gateway.helpers import ROOT, start_cli, wait_healthy
from tests.guard.conftest import REDIS, RedisServer


@pytest.mark.slow
@pytest.mark.redis
def test_two_workers_share_the_budget_in_redis(tmp_path: Path) -> None:
    if REDIS is None:
        pytest.skip("redis-server is not installed (scripts/test installs it)")
    redis = RedisServer(tmp_path / "redis")
    redis.dir.mkdir()
    redis.start()
    limit = Decimal("0.0003")
    env = dict(os.environ, MOCK_PROVIDER_KEY="sk", PYTHONPATH=str(ROOT), LOG_DIR=str(tmp_path))
    mport, gport = free_port(), free_port()
    cfg = write_config(
        tmp_path,
        upstream=f"http://127.0.0.1:{mport}/v1",
        policy=POLICY.format(graceful="false", limit=limit),
        extra=f'redis_url = "{redis.url}"',
    )
    key = create_key(tmp_path / "keys.json", "acme")
    mock = start_cli(["mock-upstream", "--port", str(mport)], env)
    gw = start_cli(["gateway", "--config", str(cfg), "--port", str(gport), "--workers", "2"], env)
    url = f"http://127.0.0.1:{gport}"
    try:
        wait_healthy(f"http://127.0.0.1:{mport}", mock)
        wait_healthy(url, gw)

        def one(i: int) -> int:
            with httpx.Client(timeout=10) as c:
                return c.post(
                    url + "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": "hello there"}],
                        "max_tokens": 16,
                    },
                ).status_code

        with cf.ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(one, range(100)))
    finally:
        for p in (gw, mock):
            p.send_signal(signal.SIGTERM)
            p.wait(20)
        redis.stop()
    ok = codes.count(200)
    assert ok > 0 and codes.count(429) == 100 - ok
    con = Ledger(tmp_path / "ledger").connect()
    try:
        n, spent = con.execute(
            "SELECT count(*), sum(cost_usd) FROM events WHERE kind = 'llm_call'"
        ).fetchone()
    finally:
        con.close()
    assert n == ok and spent <= limit
