"""The gateway's TOML configuration and its virtual keys.

::

    [gateway]
    ledger = "./tailguard-data"      # the same ledger the reports read
    policy = "policy.toml"           # the guard policy (optional: no guard without it)
    prices = "prices.toml"           # operator price overrides (optional)
    redis_url = "redis://..."        # shared guard state (needed with --workers > 1)
    keys = "keys.json"               # virtual keys (default: keys.json beside this file)
    durability = "fsync"             # fsync | write | none (write-ahead log acknowledgement)
    flush_interval_s = 2.0           # write-ahead log -> Parquet segments
    default_max_output_tokens = 4096 # reservation when the request sets no max_tokens
    timeout_s = 600                  # upstream timeout
    http_client = "auto"             # auto | aiohttp | httpx (auto: aiohttp when installed)
    user_hash_key_env = ""           # env var holding an HMAC key: user ids stored hashed

    [[upstream]]
    provider = "openai"              # wire format: openai | anthropic
    base_url = "http://127.0.0.1:9000/v1"
    api_key_env = "OPENAI_API_KEY"   # the real provider key stays in the environment
    models = ["*"]                   # which models route here (globs)

Relative paths are relative to the config file. Virtual keys are stored as their sha256 only
(a leaked keys file does not leak usable keys), in a file of mode 600.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailguard.errors import ConfigError

KEY_PREFIX = "tg-"


@dataclass(frozen=True, slots=True)
class Upstream:
    """One provider endpoint and the models routed to it."""

    provider: str
    base_url: str
    api_key_env: str | None = None
    models: tuple[str, ...] = ("*",)

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def serves(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, g) for g in self.models)


@dataclass(slots=True)
class GatewayConfig:
    """Everything the gateway app needs, paths resolved."""

    ledger: Path
    upstreams: list[Upstream]
    keys: Path
    policy: Path | None = None
    prices: Path | None = None
    redis_url: str | None = None
    durability: str = "fsync"
    flush_interval_s: float = 2.0
    default_max_output_tokens: int = 4096
    timeout_s: float = 600.0
    http_client: str = "auto"
    user_hash_key: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def route(self, provider: str, model: str) -> Upstream | None:
        """The first upstream of that wire format whose globs match the model."""
        for u in self.upstreams:
            if u.provider == provider and u.serves(model):
                return u
        return None


def load_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and check the gateway config; a bad value raises ``ConfigError`` naming the key."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: gateway config not found")
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    return parse_config(raw, base=p.parent)


def parse_config(raw: dict[str, Any], *, base: Path) -> GatewayConfig:
    g = raw.get("gateway", {})
    if not isinstance(g, dict):
        raise ConfigError("[gateway] must be a table")

    def rel(v: Any) -> Path:
        q = Path(str(v)).expanduser()
        return q if q.is_absolute() else base / q

    ups: list[Upstream] = []
    for i, u in enumerate(raw.get("upstream", [])):
        prov = u.get("provider")
        if prov not in ("openai", "anthropic"):
            raise ConfigError(f"upstream[{i}].provider: must be openai or anthropic, got {prov!r}")
        if not isinstance(u.get("base_url"), str):
            raise ConfigError(f"upstream[{i}].base_url: required (e.g. https://api.openai.com/v1)")
        models = u.get("models", ["*"])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ConfigError(f"upstream[{i}].models: must be a list of globs")
        ups.append(Upstream(prov, u["base_url"].rstrip("/"), u.get("api_key_env"), tuple(models)))
    durability = g.get("durability", "fsync")
    if durability not in ("fsync", "write", "none"):
        raise ConfigError(f"gateway.durability: fsync | write | none, got {durability!r}")
    hash_env = g.get("user_hash_key_env")
    hash_key = None
    if hash_env:
        val = os.environ.get(hash_env)
        if not val:
            raise ConfigError(f"gateway.user_hash_key_env: ${hash_env} is not set")
        hash_key = val.encode()
    return GatewayConfig(
        ledger=rel(g.get("ledger", "./tailguard-data")),
        upstreams=ups,
        keys=rel(g.get("keys", "keys.json")),
        policy=rel(g["policy"]) if g.get("policy") else None,
        prices=rel(g["prices"]) if g.get("prices") else None,
        redis_url=g.get("redis_url"),
        durability=durability,
        flush_interval_s=float(g.get("flush_interval_s", 2.0)),
        default_max_output_tokens=int(g.get("default_max_output_tokens", 4096)),
        timeout_s=float(g.get("timeout_s", 600.0)),
        http_client=str(g.get("http_client", "auto")),
        user_hash_key=hash_key,
    )


# --- virtual keys ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Who a virtual key belongs to: the customer always, a user when it was issued for one."""

    customer_id: str
    user_id: str | None = None
    name: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path) -> dict[str, KeyRecord]:
    """sha256 of the key -> its record; a missing file is no keys."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable keys file: {exc}") from exc
    return {
        h: KeyRecord(r["customer_id"], r.get("user_id"), r.get("name"))
        for h, r in data.get("keys", {}).items()
    }


def create_key(path: Path, customer_id: str, user_id: str | None = None) -> str:
    """Issue a key for a customer (and user); only its hash is stored. Returns the key."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    data: dict[str, Any] = {"keys": {}}
    if path.exists():
        data = json.loads(path.read_text())
    rec: dict[str, Any] = {"customer_id": customer_id, "name": key[:7] + "…" + key[-4:]}
    if user_id:
        rec["user_id"] = user_id
    data.setdefault("keys", {})[hash_key(key)] = rec
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return key
