"""Planning: turn one request and a customer's limits into the store's atomic ``Plan``.

The guard answers in three steps, one module each: **planning** (here: which counters a call
touches and by how much, with no I/O), **deciding** (``tailguard.guard.deciding``: what the
store's answer means for the caller) and, when the shared store is down, **failover**
(``tailguard.guard.failover``). ``Guard.check`` and ``Guard.acheck`` call the same
``Planner.plan``; only the store round trip between planning and deciding differs.

Why the request is bounded here: every number in a plan reaches Lua (exact only to 2^53) through
a msgpack argument (at most 2^64). A request whose estimate or token counts are out of range is
refused alone (``invalid_request``) before any store is asked, so one bad call can neither fail
a script for everyone nor mark the shared store down.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
from decimal import Decimal

from tailguard.guard.policy import Limits, Settings
from tailguard.guard.stores.base import (
    DENY,
    IGNORE,
    KILL,
    Cap,
    Plan,
    Rate,
    SettleItem,
    encode_member,
)
from tailguard.guard.types import Request, Reservation
from tailguard.guard.units import MAX_TOKENS, MAX_USD, to_micro

UTC = dt.UTC
_DAY_MS = 86_400_000
TASK_TTL_MS = 7 * _DAY_MS
KEEP_MS = 7 * _DAY_MS  # a finished period's budget stays readable this long


def key_id(s: str) -> str:
    """A key component: the id itself, or a hash when it holds characters keys cannot."""
    return s if s.isprintable() else "h:" + hashlib.sha256(s.encode()).hexdigest()[:32]


def period_bounds(period: str, now_ms: int) -> tuple[str, int, int]:
    """``(label, start_ms, end_ms)`` of the UTC calendar period holding ``now_ms``."""
    if period == "minute":
        m = now_ms // 60_000
        return f"minute:{m}", m * 60_000, (m + 1) * 60_000
    if period == "hour":
        h = now_ms // 3_600_000
        return f"hour:{h}", h * 3_600_000, (h + 1) * 3_600_000
    d = dt.datetime.fromtimestamp(now_ms / 1000, UTC)
    if period == "day":
        start = dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
        end = start + dt.timedelta(days=1)
        label = f"day:{start:%Y-%m-%d}"
    else:
        start = dt.datetime(d.year, d.month, 1, tzinfo=UTC)
        end = dt.datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
        label = f"month:{start:%Y-%m}"
    return label, int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def budget_key(customer_id: str, lim: Limits, now_ms: int) -> tuple[str, int, int]:
    """The budget counter's key for this period, with the period's start and end."""
    label, start, end = period_bounds(lim.period, now_ms)
    return f"tg:{{{key_id(customer_id)}}}:b:{lim.budget_unit}:{label}", start, end


def invalid_request(req: Request) -> str | None:
    """Why a request cannot be planned (the field, its value, the range), or None."""
    est, i, o = req.estimated_cost_usd, req.input_tokens, req.max_output_tokens
    if (  # the common case in one expression (this runs on every check)
        type(est) is Decimal
        and type(i) is int
        and type(o) is int
        and req.seats is None
        and est.is_finite()
        and 0 <= est <= MAX_USD
        and 0 <= i <= MAX_TOKENS
        and 0 <= o <= MAX_TOKENS
    ):
        return None
    return _why_invalid(req)


def _why_invalid(req: Request) -> str | None:
    est = req.estimated_cost_usd
    if not isinstance(est, Decimal | int) or isinstance(est, bool):
        return f"estimated_cost_usd must be a Decimal, got {est!r}"
    if not Decimal(est).is_finite() or not 0 <= est <= MAX_USD:
        return f"estimated_cost_usd must be from 0 to {MAX_USD:,} dollars, got {est}"
    for name in ("input_tokens", "max_output_tokens"):
        v = getattr(req, name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_TOKENS:
            return f"{name} must be a whole number from 0 to {MAX_TOKENS:,}, got {v!r}"
    if req.seats is not None and (
        isinstance(req.seats, bool) or not isinstance(req.seats, int) or req.seats < 0
    ):
        return f"seats must be a whole number >= 0, got {req.seats!r}"
    return None


class Prep:
    """A planned check: the plan and what deciding needs to read the store's answer."""

    __slots__ = (
        "budget_index",
        "cap_rules",
        "est_tokens",
        "lim",
        "period_end",
        "plan",
        "rate_rules",
        "req",
        "rid",
        "tpm_key",
        "units",
    )

    def __init__(
        self,
        req: Request,
        lim: Limits,
        plan: Plan,
        rid: str,
        rate_rules: list[str],
        cap_rules: list[str],
        units: list[str],
        tpm_key: str | None,
        est_tokens: int,
        period_end: int,
        budget_index: int,
    ) -> None:
        self.req, self.lim, self.plan, self.rid = req, lim, plan, rid
        self.rate_rules, self.cap_rules, self.units = rate_rules, cap_rules, units
        self.tpm_key, self.est_tokens, self.period_end = tpm_key, est_tokens, period_end
        self.budget_index = budget_index


class Planner:
    """Builds plans; holds the small caches that keep planning cheap (key prefixes, periods)."""

    def __init__(self, settings: Settings) -> None:
        self._ttl_ms = settings.reservation_ttl_s * 1000
        self._kill_ms = settings.kill_ttl_s * 1000
        self._period_cache: dict[tuple[str, int], tuple[str, int, int]] = {}
        self._prefixes: dict[str, str] = {}
        self._ids = itertools.count()
        #: random per process, so reservation and settle ids never collide across replicas
        self.id_prefix = os.urandom(6).hex()

    def next_id(self) -> str:
        return f"{self.id_prefix}{next(self._ids):x}"

    def plan(self, req: Request, lim: Limits, now_ms: int) -> Prep:
        """Every counter this call touches, in the order the store checks them.

        Caps are ordered so a runaway session is killed (velocity first) before a budget denies,
        and the budget is checked before task ceilings; ``budget_index`` says where it is.
        """
        p = self._prefixes.get(req.customer_id)
        if p is None:
            if len(self._prefixes) > 100_000:
                self._prefixes.clear()
            p = self._prefixes[req.customer_id] = f"tg:{{{key_id(req.customer_id)}}}:"
        minute = now_ms // 60_000
        rexp = (minute + 2) * 60_000
        est_tok = req.input_tokens + req.max_output_tokens
        est = to_micro(req.estimated_cost_usd)
        rates: list[Rate] = []
        rate_rules: list[str] = []
        tpm_key = None
        if lim.rpm is not None:
            rates.append(Rate(f"{p}rm:{minute}", lim.rpm, 1, rexp))
            rate_rules.append("rpm")
        if lim.user_rpm is not None and req.user_id is not None:
            rates.append(Rate(f"{p}u:{key_id(req.user_id)}:{minute}", lim.user_rpm, 1, rexp))
            rate_rules.append("user_rpm")
        if lim.tpm is not None:
            tpm_key = f"{p}tm:{minute}"
            rates.append(Rate(tpm_key, lim.tpm, est_tok, rexp))
            rate_rules.append("tpm")
        pc = self._period_cache.get((lim.period, minute))
        if pc is None:
            if len(self._period_cache) > 64:
                self._period_cache.clear()
            pc = self._period_cache[(lim.period, minute)] = period_bounds(lim.period, now_ms)
        label, _start, end = pc
        hard = lim.hard_limit
        deny_over = hard is not None and (
            lim.overage == "hard_cap"
            or (lim.overage == "soft_cap_degrade" and lim.hard_limit_action == "deny")
        )
        soft = lim.soft_limit
        caps = [  # positional arguments: this runs on every check
            Cap(
                f"{p}b:{lim.budget_unit}:{label}",
                hard if hard is not None else -1,
                est if lim.budget_unit == "usd" else est_tok,
                DENY if deny_over else IGNORE,
                end + KEEP_MS,
                None,
                0,
                f"{p}a:{label}" if soft is not None else None,
                soft if soft is not None else -1,
            )
        ]
        units = [lim.budget_unit]
        cap_rules = ["hard_limit"]
        kill_key = None
        if req.session_id is not None:
            s = key_id(req.session_id)
            kill_key = f"{p}k:{s}"
            if lim.session_max_per_hour is not None:
                hour, into = divmod(now_ms, 3_600_000)
                caps.insert(
                    0,
                    Cap(
                        f"{p}v:{s}:{hour}",
                        lim.session_max_per_hour,
                        est,
                        KILL,
                        (hour + 2) * 3_600_000,
                        prev_key=f"{p}v:{s}:{hour - 1}",
                        prev_weight_bp=(3_600_000 - into) * 10_000 // 3_600_000,
                    ),
                )
                units.insert(0, "usd")
                cap_rules.insert(0, "session_velocity")
        budget_index = len(caps) - 1
        if req.task_id is not None:
            t = key_id(req.task_id)
            if lim.task_max_llm_calls is not None:
                caps.append(
                    Cap(f"{p}ts:{t}", lim.task_max_llm_calls, 1, DENY, now_ms + TASK_TTL_MS)
                )
                units.append("step")
                cap_rules.append("task_max_llm_calls")
            if lim.task_max_cost is not None:
                caps.append(Cap(f"{p}t:{t}", lim.task_max_cost, est, DENY, now_ms + TASK_TTL_MS))
                units.append("usd")
                cap_rules.append("task_max_cost_usd")
        rid = self.next_id()
        plan = Plan(
            now_ms,
            f"{p}res",
            encode_member(rid, caps),
            now_ms + self._ttl_ms,
            kill_key,
            now_ms + self._kill_ms,
            rates,
            caps,
        )
        return Prep(
            req, lim, plan, rid, rate_rules, cap_rules, units, tpm_key, est_tok, end, budget_index
        )


def settle_items(
    r: Reservation, micro: int, itok: int | None, otok: int | None
) -> tuple[list[SettleItem], list[Rate]]:
    """What a settle moves: each reserved amount replaced by its actual (dollars, tokens, one
    step), and the token-rate window corrected by actual minus estimated tokens."""
    have_tok = itok is not None or otok is not None
    tok = min(MAX_TOKENS, max(0, itok or 0) + max(0, otok or 0)) if have_tok else r.est_tokens
    if len(r.caps) == 1:  # a budget alone: no comprehension (this runs on every settle)
        c, u = r.caps[0], r.units[0]
        items = [SettleItem(c.key, c.amount, micro if u == "usd" else tok, c.expire_ms)]
    else:
        items = [
            SettleItem(
                c.key, c.amount, micro if u == "usd" else tok if u == "tok" else 1, c.expire_ms
            )
            for c, u in zip(r.caps, r.units, strict=True)
        ]
    adjust = (
        [Rate(r.tpm_key, 0, tok - r.est_tokens, 0)]
        if r.tpm_key is not None and have_tok and tok != r.est_tokens
        else []
    )
    return items, adjust


def release_items(r: Reservation) -> list[SettleItem]:
    """A release refunds every reserved amount and adds nothing."""
    return [SettleItem(c.key, c.amount, 0, c.expire_ms) for c in r.caps]
