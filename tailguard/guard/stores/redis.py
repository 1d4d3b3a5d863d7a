"""The Redis store: the same plan, executed by one Lua script in one round trip.

Why Lua: a check reads several counters and writes them only if every limit passes; doing that
as one script makes it atomic across any number of gateway processes without locks or retries
(``EVALSHA``, one round trip; redis-py loads the script on the first ``NOSCRIPT``).

Keys (all of one customer share the hash tag ``{customer}``, so they live in one cluster slot):
``tg:{c}:b:PERIOD`` budget, ``tg:{c}:t:TASK`` / ``tg:{c}:ts:TASK`` task dollars / steps,
``tg:{c}:v:SESSION:HOUR`` session velocity, ``tg:{c}:k:SESSION`` kill flag, ``tg:{c}:a:...``
alert flags, ``tg:{c}:rm:MINUTE`` / ``tg:{c}:tm:MINUTE`` / ``tg:{c}:u:USER:MINUTE`` rate windows,
``tg:{c}:res`` the reservation sorted set. Cap keys are hashes ``{s: spent, r: reserved}`` in
integer micro-dollars (tokens for token budgets, calls for step ceilings). Every key expires.

Every driver error is translated here, at one boundary, into ``StoreUnavailableError`` so the
engine can apply the policy's fail mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from importlib import resources
from typing import Any

import msgspec

from tailguard.errors import GuardError, MissingDependencyError
from tailguard.guard.stores.base import CheckResult, Plan, Rate, SettleItem

try:
    import redis
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry as ARetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("redis", "redis") from exc


class StoreUnavailableError(GuardError):
    """The shared store could not be reached or answered with an error (retryable)."""

    retryable = True


class StoreRequestError(GuardError):
    """The store refused one call's data (a script error): that call fails alone, the store is
    not marked down for everyone (terminal)."""


def _translate(url: str, exc: redis.RedisError) -> GuardError:
    """The one boundary where driver errors become the guard's: a script error is about the
    request; anything else (connection, time-out, read-only replica, out of memory) is the
    store being unavailable."""
    msg = str(exc)
    if (
        type(exc) is redis.exceptions.ResponseError
        and "script" in msg.lower()
        and not msg.startswith("BUSY")
    ):
        return StoreRequestError(f"redis {url}: {msg}")
    return StoreUnavailableError(f"redis {url}: {msg}")


def _lua(name: str) -> str:
    return resources.files("tailguard.guard.stores").joinpath(name).read_text(encoding="utf-8")


_msgpack = msgspec.msgpack.Encoder().encode
PURGE_LUA = _lua("purge.lua")  # one rule for refunding expired reservations, in two scripts
CHECK_LUA = PURGE_LUA + _lua("check.lua")
READ_LUA = PURGE_LUA + _lua("read.lua")
SETTLE_LUA = _lua("settle.lua")


def _check_args(plan: Plan) -> tuple[list[str], list[Any]]:
    keys: list[str] = [plan.res_key, plan.kill_key or plan.res_key]
    args: list[Any] = [
        plan.now_ms,
        plan.member,
        plan.res_expire_ms,
        1 if plan.kill_key else 0,
        plan.kill_expire_ms,
        len(plan.rates),
        len(plan.caps),
    ]
    for key, limit, amount, expire_ms in plan.rates:  # Rate's shape
        keys.append(key)
        args += (limit, amount, expire_ms)
    for key, limit, amount, on_exceed, expire_ms, prev_key, prev_bp, alert_key, alert_at in (
        plan.caps  # Cap's shape
    ):
        keys += (key, prev_key or key, alert_key or key)
        args += (
            limit,
            amount,
            on_exceed,
            expire_ms,
            prev_bp if prev_key else 0,
            alert_at if alert_key else -1,
        )
    return keys, args


def _settle_args(
    res_key: str,
    member: str,
    items: list[SettleItem],
    rate_adjust: list[Rate],
    now_ms: int,
    settle_id: str,
) -> tuple[list[str], list[Any]]:
    keys = [res_key or "tg:none"]
    args: list[Any] = [member or "-", len(items), len(rate_adjust), now_ms, settle_id]
    for key, reserved, actual, expire_ms in items:
        keys.append(key)
        args += (reserved, actual, expire_ms)
    for key, _limit, amount, _exp in rate_adjust:  # Rate's shape
        keys.append(key)
        args.append(amount)
    return keys, args


def _packed(keys: list[str], args: list[Any]) -> tuple[list[str], list[bytes]]:
    """One real key (for cluster routing) and the whole plan as one msgpack argument."""
    return [keys[0]], [_msgpack([len(keys), *keys, *args])]


def _result(raw: Any) -> CheckResult:
    return CheckResult(int(raw[0]), int(raw[1]), [int(x) for x in raw[2]], bool(raw[3]))


class RedisStore:
    """Shared guard state in Redis for many gateway processes; sync and asyncio clients.

    ``url`` is a ``redis://`` URL. Timeouts are short on purpose (default 1 s): a guard that
    waits seconds for a sick Redis adds those seconds to every LLM call; the engine's fail mode
    decides what happens instead.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        timeout_s: float = 1.0,
        max_connections: int = 32,
        pool_wait_s: float = 2.0,
    ) -> None:
        self.url = url
        # A blocking pool: a burst of concurrent checks waits for a free connection (back
        # pressure) instead of failing with "Too many connections" and tripping the fail mode.
        # A connection error is retried once on a fresh connection: after Redis restarts, every
        # pooled connection is dead, and without the retry each one failed a call (and tripped
        # the fail mode) before being replaced. A time-out is never retried: the command may
        # still run (settles carry an id for that), and a retry would double the wait.
        self._kw: dict[str, Any] = {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "retry_on_timeout": False,
            "retry_on_error": [redis.exceptions.ConnectionError],
            "max_connections": max_connections,
            "timeout": pool_wait_s,
        }
        pool = redis.BlockingConnectionPool.from_url(url, retry=Retry(NoBackoff(), 1), **self._kw)
        self.client = redis.Redis(connection_pool=pool)
        self._check = self.client.register_script(CHECK_LUA)
        self._settle = self.client.register_script(SETTLE_LUA)
        self._read = self.client.register_script(READ_LUA)
        # redis.asyncio clients belong to one event loop: keep one per loop
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def _aclient(self) -> tuple[Any, Any, Any]:
        loop = asyncio.get_running_loop()
        got = self._aclients.get(loop)
        if got is None:
            apool = aredis.BlockingConnectionPool.from_url(
                self.url, retry=ARetry(NoBackoff(), 1), **self._kw
            )
            c = aredis.Redis(connection_pool=apool)
            got = (c, c.register_script(CHECK_LUA), c.register_script(SETTLE_LUA))
            self._aclients[loop] = got
        return got

    def check(self, plan: Plan) -> CheckResult:
        keys, args = _packed(*_check_args(plan))
        try:
            return _result(self._check(keys=keys, args=args))
        except redis.RedisError as exc:
            raise _translate(self.url, exc) from exc

    async def acheck(self, plan: Plan) -> CheckResult:
        keys, args = _packed(*_check_args(plan))
        try:
            _c, script, _s = self._aclient()
            return _result(await script(keys=keys, args=args))
        except redis.RedisError as exc:
            raise _translate(self.url, exc) from exc

    def settle(
        self,
        res_key: str,
        member: str,
        items: list[SettleItem],
        rate_adjust: list[Rate],
        now_ms: int,
        settle_id: str = "",
    ) -> list[int]:
        keys, args = _packed(*_settle_args(res_key, member, items, rate_adjust, now_ms, settle_id))
        try:
            return [int(x) for x in self._settle(keys=keys, args=args)]
        except redis.RedisError as exc:
            raise _translate(self.url, exc) from exc

    async def asettle(
        self,
        res_key: str,
        member: str,
        items: list[SettleItem],
        rate_adjust: list[Rate],
        now_ms: int,
        settle_id: str = "",
    ) -> list[int]:
        keys, args = _packed(*_settle_args(res_key, member, items, rate_adjust, now_ms, settle_id))
        try:
            _c, _k, script = self._aclient()
            return [int(x) for x in await script(keys=keys, args=args)]
        except redis.RedisError as exc:
            raise _translate(self.url, exc) from exc

    def add_spent(self, items: list[SettleItem], now_ms: int) -> None:
        self.settle("", "", items, [], now_ms)

    def read(
        self, keys: list[str], now_ms: int | None = None, res_key: str | None = None
    ) -> list[tuple[int, int]]:
        try:
            if res_key is not None:  # refund the customer's expired reservations first
                now = int(time.time() * 1000) if now_ms is None else now_ms
                flat = [int(x) for x in self._read(keys=[res_key, *keys], args=[now])]
                return list(zip(flat[::2], flat[1::2], strict=True))
            pipe = self.client.pipeline(transaction=False)
            for k in keys:
                pipe.hmget(k, "s", "r")
            return [(int(s or 0), int(r or 0)) for s, r in pipe.execute()]
        except redis.RedisError as exc:
            raise _translate(self.url, exc) from exc

    def clear_flag(self, key: str) -> bool:
        try:
            return bool(self.client.delete(key))
        except redis.RedisError as exc:
            raise _translate(self.url, exc) from exc

    def ping(self) -> None:
        """One round trip (the benchmark's floor)."""
        self.client.ping()

    def close(self) -> None:
        """Close the sync client's connections (async clients: ``aclose`` in their loop)."""
        self.client.close()
        self.client.connection_pool.disconnect()
        for c, _a, _b in list(self._aclients.values()):
            # the loop is gone or not ours to run: drop the sockets without awaiting
            for conn in list(c.connection_pool._available_connections):
                w = getattr(conn, "_writer", None)
                if w is not None:
                    with contextlib.suppress(RuntimeError):  # its loop already closed
                        w.transport.abort()
        self._aclients.clear()

    async def aclose(self) -> None:
        """Close the current loop's async client (call before the loop ends)."""
        got = self._aclients.pop(asyncio.get_running_loop(), None)
        if got is not None:
            await got[0].aclose()
            await got[0].connection_pool.disconnect()
