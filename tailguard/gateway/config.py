"""The gateway's TOML configuration, checked like the guard policy: an unknown section or key is
refused with its name (a typo such as ``polcy =`` or ``[gatway]`` used to start a gateway with no
guard and no warning), every value's type and range is checked, and the error names the file and
the key.

::

    [gateway]
    ledger = "./tailguard-data"      # the same ledger the reports read      [env TAILGUARD_LEDGER]
    policy = "policy.toml"           # the guard policy (no guard without it) [env TAILGUARD_POLICY]
    prices = "prices.toml"           # operator price overrides               [env TAILGUARD_PRICES]
    redis_url = "redis://..."        # shared guard state (--workers > 1)  [env TAILGUARD_REDIS_URL]
    keys = "keys.json"               # virtual keys (default: keys.json beside this file)
    durability = "fsync"             # fsync | write | none (write-ahead log acknowledgement)
    flush_interval_s = 2.0           # write-ahead log -> Parquet segments (0 < s <= 3600)
    default_max_output_tokens = 4096 # reservation when the request sets no max_tokens
    timeout_s = 600                  # upstream timeout (0 < s <= 86400)
    http_client = "auto"             # auto | aiohttp | httpx (auto: aiohttp when installed)
    user_hash_key_env = ""           # env var holding an HMAC key: user ids stored hashed
    max_body_mb = 40                 # larger request bodies get a 413 (after auth, before reading)
    metrics = true                   # serve /metrics (false: 404)
    metrics_token_env = ""           # env var holding a token /metrics then requires (Bearer)
    forward_headers = []             # client headers passed upstream beyond the built-in list

    [[upstream]]
    provider = "openai"              # wire format: openai | anthropic
    base_url = "http://127.0.0.1:9000/v1"
    api_key_env = "OPENAI_API_KEY"   # the real provider key stays in the environment
    models = ["*"]                   # which models route here (globs)

Relative paths in the file are relative to the file; in the environment, to the working
directory. Environment over file, as for every command (docs/configuration.md).
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailguard.errors import ConfigError
from tailguard.gateway.door import MAX_OUTPUT_TOKENS

# the keys moved to tailguard.gateway.keys; these names stay importable from here
from tailguard.gateway.keys import (  # noqa: F401
    KEY_PREFIX,
    KeyRecord,
    create_key,
    hash_key,
    load_keys,
)

#: the largest request body a provider takes is Anthropic's 32 MB (Messages API); a few MB over
DEFAULT_MAX_BODY_MB = 40.0
#: client headers passed to the provider (an allow-list: never the client's auth, nor
#: ``OpenAI-Organization`` / ``OpenAI-Project``, which would bill the operator's key to another
#: org or project)
FORWARD_HEADERS = frozenset(
    {
        "content-type",
        "accept",
        "user-agent",
        "anthropic-version",
        "anthropic-beta",
        "openai-beta",
        "idempotency-key",
    }
)
#: headers the operator may not add to the allow-list
NEVER_FORWARD = frozenset(
    {
        "authorization",
        "x-api-key",
        "proxy-authorization",
        "openai-organization",
        "openai-project",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "cookie",
    }
)
#: settings the environment can give, over the file (docs/configuration.md)
ENV = {
    "ledger": "TAILGUARD_LEDGER",
    "policy": "TAILGUARD_POLICY",
    "prices": "TAILGUARD_PRICES",
    "redis_url": "TAILGUARD_REDIS_URL",
}


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

    ledger: Path  # local: the ledger directory, or a ClickHouse ledger's (the WAL lives here)
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
    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 1024 * 1024)
    metrics: bool = True
    metrics_token: str | None = None
    forward_headers: frozenset[str] = FORWARD_HEADERS
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``chdb:///DIR`` or ``clickhouse://HOST:PORT/DB`` when the ledger is ClickHouse
    ledger_url: str | None = None

    def route(self, provider: str, model: str) -> Upstream | None:
        """The first upstream of that wire format whose globs match the model."""
        for u in self.upstreams:
            if u.provider == provider and u.serves(model):
                return u
        return None


def load_config(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Read and check the gateway config; a bad value raises ``ConfigError`` naming the file and
    the key. ``env`` (default ``os.environ``) gives ``TAILGUARD_LEDGER`` ... over the file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: gateway config not found")
    try:
        raw = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    try:
        return parse_config(raw, base=p.parent, env=env)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


class _Table:
    """One TOML table being read: each key taken once, then the rest refused by name."""

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: must be a table")
        self.raw = raw
        self.where = where
        self.seen: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return self.raw.get(key, default)

    def str_(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> Any:
        v = self.get(key, default)
        if v is None:
            return None
        if not isinstance(v, str):
            raise ConfigError(f"{self.where}.{key}: must be a string, got {v!r}")
        if choices and v not in choices:
            raise ConfigError(f"{self.where}.{key}: {' | '.join(choices)}, got {v!r}")
        return v

    def num(self, key: str, default: float, *, hi: float, integer: bool = False) -> Any:
        """A number in (0, hi] (an integer in [1, hi] when ``integer``)."""
        v = self.get(key, default)
        kind = "an integer" if integer else "a number"
        ok_type = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok_type or not (0 < v <= hi):
            raise ConfigError(f"{self.where}.{key}: must be {kind} > 0 and <= {hi:g}, got {v!r}")
        return v

    def bool_(self, key: str, default: bool) -> bool:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise ConfigError(f"{self.where}.{key}: must be true or false, got {v!r}")
        return v

    def str_list(self, key: str, default: list[str]) -> list[str]:
        v = self.get(key, default)
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise ConfigError(f"{self.where}.{key}: must be a list of strings, got {v!r}")
        return v

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.seen)
        if unknown:
            raise ConfigError(
                f"{self.where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(self.seen))})"
            )


def _secret(t: _Table, key: str, env: Mapping[str, str]) -> str | None:
    name = t.str_(key)
    if not name:
        return None
    val = env.get(name)
    if not val:
        raise ConfigError(f"{t.where}.{key}: ${name} is not set")
    return val


def parse_config(
    raw: dict[str, Any], *, base: Path, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Check a parsed config; environment settings (``ENV``) override the file's."""
    env = os.environ if env is None else env
    unknown = sorted(set(raw) - {"gateway", "upstream"})
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}] (known: [gateway], [[upstream]])")
    g = _Table(raw.get("gateway", {}), "gateway")

    def path_of(key: str, default: str | None = None) -> Path | None:
        from_env = env.get(ENV[key]) if key in ENV else None
        v = g.str_(key, default)
        if from_env:
            return Path(from_env).expanduser().absolute()
        if not v:
            return None
        q = Path(v).expanduser()
        return q if q.is_absolute() else base / q

    from tailguard.ledger.clickhouse import ClickHouseURL, is_clickhouse_url

    ledger_url = env.get(ENV["ledger"]) or g.raw.get("ledger")
    if is_clickhouse_url(ledger_url):  # the events go to ClickHouse; the WAL stays local
        g.str_("ledger")
        local = ClickHouseURL.parse(ledger_url).local.expanduser()
        ledger: Path | None = local if local.is_absolute() else base / local
    else:
        ledger_url = None
        ledger = path_of("ledger", "./tailguard-data")
    assert ledger is not None
    keys = Path(g.str_("keys", "keys.json")).expanduser()
    redis_url = g.str_("redis_url")  # read even when the environment wins: it is a known key
    redis_url = env.get(ENV["redis_url"]) or redis_url
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"gateway.redis_url: redis://, rediss:// or unix://, got {redis_url!r}")
    extra_headers = {h.lower() for h in g.str_list("forward_headers", [])}
    bad = sorted(extra_headers & NEVER_FORWARD)
    if bad:
        raise ConfigError(f"gateway.forward_headers: {bad[0]!r} is never forwarded")
    user_secret = _secret(g, "user_hash_key_env", env)
    cfg = GatewayConfig(
        ledger=ledger,
        ledger_url=ledger_url,
        upstreams=[],
        keys=keys if keys.is_absolute() else base / keys,
        policy=path_of("policy"),
        prices=path_of("prices"),
        redis_url=redis_url or None,
        durability=g.str_("durability", "fsync", choices=("fsync", "write", "none")),
        flush_interval_s=float(g.num("flush_interval_s", 2.0, hi=3600)),
        default_max_output_tokens=g.num(
            "default_max_output_tokens", 4096, hi=MAX_OUTPUT_TOKENS, integer=True
        ),
        timeout_s=float(g.num("timeout_s", 600.0, hi=86400)),
        http_client=g.str_("http_client", "auto", choices=("auto", "aiohttp", "httpx")),
        user_hash_key=user_secret.encode() if user_secret else None,
        max_body_bytes=int(g.num("max_body_mb", DEFAULT_MAX_BODY_MB, hi=4096) * 1024 * 1024),
        metrics=g.bool_("metrics", True),
        metrics_token=_secret(g, "metrics_token_env", env),
        forward_headers=FORWARD_HEADERS | extra_headers,
    )
    g.done()
    ups = raw.get("upstream", [])
    if not isinstance(ups, list):
        raise ConfigError("upstream: write each one as [[upstream]]")
    for i, item in enumerate(ups):
        u = _Table(item, f"upstream[{i}]")
        prov = u.str_("provider", choices=("openai", "anthropic"))
        if prov is None:
            raise ConfigError(f"upstream[{i}].provider: required (openai | anthropic)")
        url = u.str_("base_url")
        if not url or not url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream[{i}].base_url: required (e.g. https://api.openai.com/v1)")
        models = u.str_list("models", ["*"])
        cfg.upstreams.append(Upstream(prov, url.rstrip("/"), u.str_("api_key_env"), tuple(models)))
        u.done()
    return cfg
