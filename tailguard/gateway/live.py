"""Live traffic for the demo: mock provider + gateway + simulated customers over real HTTP.

``run_live(out)`` starts the mock upstream and the gateway on free loopback ports (uvicorn, in
threads), issues one virtual key per customer, and drives requests from a few hundred
simulated customers through the official wire formats: a heavy-tailed (Pareto) share of the
traffic per customer, a mix of OpenAI and Anthropic models, streamed and not, and a few
runaway agent sessions. The policy's limits are small on purpose so that within a minute the
ledger holds what the reports should show: hard caps hit, degradations past a soft cap,
sessions killed for their spend velocity, pay-as-you-go overage metered.

Meant to back ``tailguard demo --live``; usable alone::

    from tailguard.gateway.live import run_live
    res = run_live("tailguard-live", customers=300, requests=3000)
    print(res.outcomes, res.ledger)
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tailguard.errors import TailguardError

#: Limits fitted to the traffic ``run_live`` drives (3,000 requests over 300 customers: a call
#: costs about $0.0003 on the mock's word counts, a heavy-tailed customer makes 10 calls on
#: average and a few hundred at the top, spread over up to ten sessions; a runaway agent loop
#: costs about $0.004 a call). Free: a cap that about one free customer in ten reaches. Pro:
#: degraded past half its cap, denied at it. Enterprise: pay-as-you-go past its pool. Session
#: velocity: well above what a normal session spends in the minute the demo runs, well below a
#: runaway loop's, so that only the loops are killed.
POLICY = """
[guard]
default_tier = "free"
graceful = false

[tiers.free]
period = "month"
hard_limit_usd = 0.005
overage = "hard_cap"
rpm = 600
session_max_usd_per_hour = 0.03

[tiers.pro]
period = "month"
hard_limit_usd = 0.02
soft_threshold = 0.5
overage = "soft_cap_degrade"
hard_limit_action = "deny"
degrade_to = { "gpt-4o" = "gpt-4o-mini", "claude-sonnet-4-6" = "claude-haiku-4-5" }
rpm = 1200
session_max_usd_per_hour = 0.015

[tiers.enterprise]
period = "month"
hard_limit_usd = 0.05
overage = "payg"
rpm = 6000
session_max_usd_per_hour = 0.03
"""

MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-6"))


@dataclass
class LiveResult:
    """What the run did: the ledger it filled and what the clients saw."""

    out: Path
    ledger: Path
    requests: int
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """A uvicorn server on a loopback port, in a thread (stopped through ``should_exit``)."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise TailguardError("the local gateway did not start within 20 s")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def run_live(
    out: str | os.PathLike[str] = "tailguard-live",
    *,
    customers: int = 300,
    requests: int = 3000,
    concurrency: int = 32,
    seed: int = 7,
) -> LiveResult:
    """Run the live demo into ``out`` (its ledger is ``out/ledger``); blocks until done."""
    import shutil

    from tailguard.gateway.app import create_gateway
    from tailguard.gateway.config import create_key, load_config
    from tailguard.gateway.mock import create_mock

    rng = random.Random(seed)
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    # this run's own ledger, started clean (a rerun must not add to the last one's figures)
    shutil.rmtree(root / "ledger", ignore_errors=True)
    mport, gport = _free_port(), _free_port()
    ids = [f"cust-{i:04d}" for i in range(customers)]
    tiers = {c: rng.choices(("free", "pro", "enterprise"), (70, 25, 5))[0] for c in ids}
    policy = POLICY + "".join(f'\n[customers.{c}]\ntier = "{t}"\n' for c, t in tiers.items())
    (root / "policy.toml").write_text(policy)
    (root / "gateway.toml").write_text(
        f"""[gateway]
ledger = "ledger"
policy = "policy.toml"
keys = "keys.json"
flush_interval_s = 1.0
default_max_output_tokens = 256
[[upstream]]
provider = "openai"
base_url = "http://127.0.0.1:{mport}/v1"
[[upstream]]
provider = "anthropic"
base_url = "http://127.0.0.1:{mport}/v1"
"""
    )
    keys_file = root / "keys.json"
    keys_file.unlink(missing_ok=True)
    keys = {c: create_key(keys_file, c) for c in ids}
    # heavy tail: a Pareto weight per customer; a few runaway agent loops on top, on paying
    # customers (a free customer's loop meets the free cap before its velocity is judged)
    # (clipped: one draw of a Pareto of exponent 1.1 can take a quarter of all the traffic)
    weights = [min(rng.paretovariate(1.1), 40.0) for _ in ids]
    paying = [c for c in ids if tiers[c] != "free"] or ids
    runaway = set(rng.sample(paying, min(len(paying), max(1, customers // 50))))

    mock = _Server(create_mock(), mport)
    # env={}: the environment overrides a gateway's config file (TAILGUARD_LEDGER, _POLICY,
    # _PRICES, _REDIS_URL), but this run is a sandbox that must never write a user's ledger
    gw_app = create_gateway(load_config(root / "gateway.toml", env={}))
    gw = _Server(gw_app, gport)
    mock.start()
    gw.start()
    res = LiveResult(root, gw_app.cfg.ledger, requests)
    t0 = time.perf_counter()
    try:
        asyncio.run(
            _drive(
                f"http://127.0.0.1:{gport}",
                ids,
                weights,
                runaway,
                keys,
                rng,
                requests,
                concurrency,
                res.outcomes,
            )
        )
    finally:
        gw.stop()  # lifespan shutdown: the write-ahead log is folded into the ledger
        mock.stop()
    res.seconds = time.perf_counter() - t0
    return res


async def _drive(
    url: str,
    ids: list[str],
    weights: list[float],
    runaway: set[str],
    keys: dict[str, str],
    rng: random.Random,
    total: int,
    concurrency: int,
    outcomes: Counter[str],
) -> None:
    # a runaway agent loop: its session keeps calling (5% of the traffic) until it is killed
    loops = sorted(runaway)
    plan = [(c, False) for c in rng.choices(ids, weights, k=total - total // 20)] + [
        (loops[i % len(loops)], True) for i in range(total // 20)
    ]
    rng.shuffle(plan)
    queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
    for c in plan:
        queue.put_nowait(c)
    words = [
        "the",
        "customer",
        "asked",
        "about",
        "the",
        "invoice",
        "and",
        "the",
        "refund",
        "policy",
        "again",
    ]

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            c, loop = queue.get_nowait()
            provider, model = MODELS[0] if loop else rng.choice(MODELS)
            session = f"{c}-loop" if loop else f"{c}-s{rng.randrange(10)}"
            # a runaway loop carries a long, growing agent context and asks for long answers
            n_words = rng.randrange(400, 800) if loop else rng.randrange(8, 120)
            prompt = " ".join(rng.choices(words, k=n_words))
            max_tokens = 256 if loop else 16
            hdrs = {
                "X-Tailguard-Session": session,
                "X-Tailguard-Feature": rng.choice(("support-agent", "search", "summarise")),
                "X-Tailguard-Workload": "agent" if loop else "chat",
                "X-Tailguard-Task": f"{session}-t{rng.randrange(5)}",
            }
            msgs = [{"role": "user", "content": prompt}]
            stream = rng.random() < 0.3
            if provider == "anthropic":
                hdrs["x-api-key"] = keys[c]
                hdrs["anthropic-version"] = "2023-06-01"
                path = "/v1/messages"
                body = {"model": model, "max_tokens": max_tokens, "messages": msgs}
            else:
                hdrs["Authorization"] = f"Bearer {keys[c]}"
                path = "/v1/chat/completions"
                body = {"model": model, "max_tokens": max_tokens, "messages": msgs}
            if stream:
                body["stream"] = True
            try:
                r = await client.post(path, json=body, headers=hdrs)
            except httpx.HTTPError:
                outcomes["transport_error"] += 1
                continue
            decision = r.headers.get("x-tailguard-decision")
            if r.status_code == 200:
                outcomes["degrade" if decision == "degrade" else "ok"] += 1
            else:
                outcomes[decision or f"http_{r.status_code}"] += 1

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
