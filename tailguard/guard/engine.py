"""The guard engine: decide before the call, settle after it.

``Guard.check(request)`` builds a plan of every limit that applies (rate windows, the period
budget, task step and dollar ceilings, the session's spend velocity), has the store check and
reserve all of it atomically, and turns the answer into a ``Decision``. ``settle`` replaces the
reserved worst case with the actual cost; ``release`` refunds it when the call failed. The
``a``-prefixed methods are the same for asyncio (Redis via ``redis.asyncio``; the memory store
never blocks).

Overspend bound (docs/guard.md): under ``hard_cap`` (and ``soft_cap_degrade`` with
``hard_limit_action = "deny"``) settled spend never passes the hard limit, at any concurrency,
as long as every call's actual cost is within its estimate and is settled before its
reservation expires; otherwise by at most the sum of those under-estimates. With the shared
store down under ``fail_open``, each process enforces alone from the last spend it saw, so N
processes can overspend by at most (N - 1) x the headroom at the start of the outage.

Never raises to the caller: a store failure applies the policy's ``fail_mode``; an unexpected
internal error is logged, counted in ``stats`` and treated like a store failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tailguard.guard.policy import CustomerInfo, Limits, Policy
from tailguard.guard.stores.base import (
    CAP_DENY,
    DENY,
    IGNORE,
    KILL,
    KILL_NOW,
    KILLED,
    RATE_DENY,
    Cap,
    CheckResult,
    Plan,
    Rate,
    SettleItem,
    Store,
    encode_member,
)
from tailguard.guard.stores.memory import MemoryStore
from tailguard.guard.types import Decision, Request, Reservation, Settlement
from tailguard.guard.units import from_micro, to_micro
from tailguard.guard.webhook import WebhookAlerter

log = logging.getLogger("tailguard.guard")

Sink = Callable[[list[dict[str, Any]]], None]
UTC = dt.UTC
_DAY_MS = 86_400_000
_TASK_TTL_MS = 7 * _DAY_MS
_KEEP_MS = 7 * _DAY_MS  # a finished period's budget stays readable this long


def _kid(s: str) -> str:
    """A key component: the id itself, or a hash when it holds characters keys cannot."""
    return s if s.isprintable() else "h:" + hashlib.sha256(s.encode()).hexdigest()[:32]


def _period(period: str, now_ms: int) -> tuple[str, int, int]:
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


def _usd(micro: int) -> str:
    return f"${from_micro(micro):,.2f}"


class Guard:
    """Per-customer budgets, caps, rate limits and ceilings, enforced before every call.

    ``store``: a ``MemoryStore`` (default, in process) or a ``RedisStore`` (shared).
    ``sink``: receives guard events (JSON-ready dicts, ledger ``guard`` kind) for every decision
    that changed something; it is called inline, so it should be quick (append to a queue);
    its failures are logged and counted, never raised. ``clock``: epoch seconds (tests).
    ``customers``: the customers table (tier, seats, contracted pool) by customer id.
    """

    def __init__(
        self,
        policy: Policy,
        store: Store | None = None,
        *,
        sink: Sink | None = None,
        clock: Callable[[], float] | None = None,
        customers: Mapping[str, CustomerInfo] | None = None,
    ) -> None:
        self.policy = policy
        self.store: Store = store if store is not None else MemoryStore()
        self.sink = sink
        self._clock = clock or time.time
        self._customers: Mapping[str, CustomerInfo] = customers or {}
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "checks",
                "allow",
                "degrade",
                "deny",
                "kill",
                "settles",
                "releases",
                "overage",
                "soft_threshold",
                "sink_errors",
                "store_errors",
                "fail_open",
                "fail_closed",
                "internal_errors",
                "resyncs",
            ),
            0,
        )
        s = policy.settings
        self._ttl_ms = s.reservation_ttl_s * 1000
        self._kill_ms = s.kill_ttl_s * 1000
        self._limits_cache: dict[tuple[str, str | None, int | None], Limits] = {}
        self._period_cache: dict[tuple[str, int], tuple[str, int, int]] = {}
        self._prefixes: dict[str, str] = {}
        self._ids = itertools.count()
        self._id_prefix = os.urandom(6).hex()
        # fail-open state (shared stores only)
        self._lock = threading.Lock()
        self._local = MemoryStore()
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._resync: dict[str, list[int]] = {}
        self._outage_recorded = False
        self._last_seen: dict[str, tuple[int, int]] = {}
        self.alerter = (
            WebhookAlerter(s.webhook_url, timeout_s=s.webhook_timeout_s) if s.webhook_url else None
        )

    # --- public API ----------------------------------------------------------------------------

    def check(self, request: Request) -> Decision:
        """Decide on one call and reserve its worst case; never raises."""
        try:
            prep = self._prepare(request)
            if isinstance(prep, Decision):
                return prep
            store = self._route_sync()
            if store is self._local:  # the shared store is down and not due for a probe
                return self._degraded(prep)
            try:
                res = store.check(prep.plan)
            except Exception as exc:  # StoreUnavailableError, or a store bug
                self._mark_down(exc)
                return self._degraded(prep)
            return self._decide(prep, res, local=False)
        except Exception:
            return self._internal_error(request)

    async def acheck(self, request: Request) -> Decision:
        """``check`` for asyncio: awaits Redis; never blocks the loop on the memory store."""
        try:
            prep = self._prepare(request)
            if isinstance(prep, Decision):
                return prep
            store = await self._route_async()
            if store is self._local:  # the shared store is down and not due for a probe
                return self._degraded(prep)
            try:
                res = await store.acheck(prep.plan)
            except Exception as exc:  # StoreUnavailableError, or a store bug
                self._mark_down(exc)
                return self._degraded(prep)
            return self._decide(prep, res, local=False)
        except Exception:
            return self._internal_error(request)

    def settle(
        self,
        reservation: Reservation | None,
        actual_cost_usd: Decimal,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> Settlement:
        """Replace the reservation by the actual cost (and tokens); meters payg overage."""
        try:
            args = self._settle_args(reservation, actual_cost_usd, input_tokens, output_tokens)
            if args is None:
                return Settlement()
            r, items, adjust = args
            store = self._local if r.local else self.store
            try:
                spent = store.settle(r.res_key, r.member, items, adjust, self._now_ms())
            except Exception as exc:
                spent = self._settle_unavailable(exc, items)
            else:
                if r.local:
                    self._push_local(items)
            return self._settled(r, items, spent, actual_cost_usd)
        except Exception:
            self._count_internal()
            return Settlement()

    async def asettle(
        self,
        reservation: Reservation | None,
        actual_cost_usd: Decimal,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> Settlement:
        """``settle`` for asyncio."""
        try:
            args = self._settle_args(reservation, actual_cost_usd, input_tokens, output_tokens)
            if args is None:
                return Settlement()
            r, items, adjust = args
            store = self._local if r.local else self.store
            try:
                spent = await store.asettle(r.res_key, r.member, items, adjust, self._now_ms())
            except Exception as exc:
                spent = self._settle_unavailable(exc, items)
            else:
                if r.local:
                    self._push_local(items)
            return self._settled(r, items, spent, actual_cost_usd)
        except Exception:
            self._count_internal()
            return Settlement()

    def release(self, reservation: Reservation | None) -> None:
        """Refund a reservation whose call failed or never happened (nothing was spent)."""
        self._release(reservation)

    async def arelease(self, reservation: Reservation | None) -> None:
        """``release`` for asyncio."""
        try:
            items = self._release_items(reservation)
            if items is None or reservation is None:
                return
            store = self._local if reservation.local else self.store
            try:
                await store.asettle(
                    reservation.res_key, reservation.member, items, [], self._now_ms()
                )
            except Exception as exc:
                self._mark_down(exc)
        except Exception:
            self._count_internal()

    @property
    def customers(self) -> Mapping[str, CustomerInfo]:
        """The customers table; assigning a new one takes effect on the next check."""
        return self._customers

    @customers.setter
    def customers(self, table: Mapping[str, CustomerInfo]) -> None:
        self._customers = table
        self._limits_cache = {}

    def revive(self, customer_id: str, session_id: str) -> bool:
        """Lift a session kill (an operator's decision); True if the session was killed."""
        return self.store.clear_flag(f"tg:{{{_kid(customer_id)}}}:k:{_kid(session_id)}")

    def limits(
        self, customer_id: str, *, tier: str | None = None, seats: int | None = None
    ) -> Limits:
        """A customer's resolved limits (policy + customers table)."""
        key = (customer_id, tier, seats)
        lim = self._limits_cache.get(key)
        if lim is None:
            if len(self._limits_cache) > 100_000:
                self._limits_cache.clear()
            lim = self.policy.limits_for(
                customer_id, info=self.customers.get(customer_id), tier=tier, seats=seats
            )
            self._limits_cache[key] = lim
        return lim

    def status(
        self, customer_id: str, *, tier: str | None = None, seats: int | None = None
    ) -> dict[str, Any]:
        """Spend, limits, headroom and the projected cap-hit date from the current pace."""
        lim = self.limits(customer_id, tier=tier, seats=seats)
        now_ms = int(self._clock() * 1000)
        label, start, end = _period(lim.period, now_ms)
        key = f"tg:{{{_kid(customer_id)}}}:b:{lim.budget_unit}:{label}"
        spent, reserved = self.store.read([key], now_ms)[0]
        conv: Callable[[int], Any] = from_micro if lim.budget_unit == "usd" else int
        out: dict[str, Any] = {
            "customer_id": customer_id,
            "tier": lim.tier,
            "period": lim.period,
            "period_start": dt.datetime.fromtimestamp(start / 1000, UTC),
            "period_end": dt.datetime.fromtimestamp(end / 1000, UTC),
            "unit": lim.budget_unit,
            "spent": conv(spent),
            "reserved": conv(reserved),
            "hard_limit": None if lim.hard_limit is None else conv(lim.hard_limit),
            "soft_limit": None if lim.soft_limit is None else conv(lim.soft_limit),
            "headroom": None,
            "utilization": None,
            "overage": lim.overage,
            "projected_period_spend": None,
            "projected_cap_hit": None,
            "rpm": lim.rpm,
            "tpm": lim.tpm,
            "user_rpm": lim.user_rpm,
            "max_input_tokens": lim.max_input_tokens,
            "task_max_llm_calls": lim.task_max_llm_calls,
            "task_max_cost_usd": None
            if lim.task_max_cost is None
            else from_micro(lim.task_max_cost),
            "session_max_usd_per_hour": None
            if lim.session_max_per_hour is None
            else from_micro(lim.session_max_per_hour),
        }
        elapsed = max(1, now_ms - start)
        if spent > 0:
            out["projected_period_spend"] = conv(spent * (end - start) // elapsed)
        if lim.hard_limit is not None:
            out["headroom"] = conv(max(0, lim.hard_limit - spent - reserved))
            out["utilization"] = (Decimal(spent) / Decimal(lim.hard_limit)).quantize(
                Decimal("0.0001")
            )
            if spent >= lim.hard_limit:
                out["projected_cap_hit"] = "reached"
            elif spent > 0:
                hit = now_ms + (lim.hard_limit - spent) * elapsed // spent
                if hit < end:
                    out["projected_cap_hit"] = dt.datetime.fromtimestamp(hit / 1000, UTC)
        return out

    def close(self) -> None:
        """Close the store and the webhook worker (after it sent what was queued)."""
        if self.alerter is not None:
            self.alerter.close()
        self.store.close()
        self._local.close()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- planning ------------------------------------------------------------------------------

    def _prepare(self, req: Request) -> _Prep | Decision:
        self.stats["checks"] += 1
        lim = self.limits(req.customer_id, tier=req.tier, seats=req.seats)
        now_ms = int(self._clock() * 1000)
        if lim.max_input_tokens is not None and req.input_tokens > lim.max_input_tokens:
            return self._deny(
                req,
                lim,
                now_ms,
                "max_input_tokens",
                None,
                f"This prompt is too long: {req.input_tokens:,} tokens, the limit is "
                f"{lim.max_input_tokens:,}. Shorten it or attach less.",
            )
        p = self._prefixes.get(req.customer_id)
        if p is None:
            if len(self._prefixes) > 100_000:
                self._prefixes.clear()
            p = self._prefixes[req.customer_id] = f"tg:{{{_kid(req.customer_id)}}}:"
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
            rates.append(Rate(f"{p}u:{_kid(req.user_id)}:{minute}", lim.user_rpm, 1, rexp))
            rate_rules.append("user_rpm")
        if lim.tpm is not None:
            tpm_key = f"{p}tm:{minute}"
            rates.append(Rate(tpm_key, lim.tpm, est_tok, rexp))
            rate_rules.append("tpm")
        pc = self._period_cache.get((lim.period, minute))
        if pc is None:
            if len(self._period_cache) > 64:
                self._period_cache.clear()
            pc = self._period_cache[(lim.period, minute)] = _period(lim.period, now_ms)
        label, _start, end = pc
        hard = lim.hard_limit
        deny_over = hard is not None and (
            lim.overage == "hard_cap"
            or (lim.overage == "soft_cap_degrade" and lim.hard_limit_action == "deny")
        )
        bkey = f"{p}b:{lim.budget_unit}:{label}"
        caps = [
            Cap(
                bkey,
                hard if hard is not None else -1,
                est if lim.budget_unit == "usd" else est_tok,
                DENY if deny_over else IGNORE,
                end + _KEEP_MS,
                alert_key=f"{p}a:{label}" if lim.soft_limit is not None else None,
                alert_at=lim.soft_limit if lim.soft_limit is not None else -1,
            )
        ]
        units = [lim.budget_unit]
        cap_rules = ["hard_limit"]
        kill_key = None
        if req.session_id is not None:
            s = _kid(req.session_id)
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
        budget_index = len(caps) - 1  # a runaway session is killed before budgets deny
        if req.task_id is not None:
            t = _kid(req.task_id)
            if lim.task_max_llm_calls is not None:
                caps.append(
                    Cap(f"{p}ts:{t}", lim.task_max_llm_calls, 1, DENY, now_ms + _TASK_TTL_MS)
                )
                units.append("step")
                cap_rules.append("task_max_llm_calls")
            if lim.task_max_cost is not None:
                caps.append(Cap(f"{p}t:{t}", lim.task_max_cost, est, DENY, now_ms + _TASK_TTL_MS))
                units.append("usd")
                cap_rules.append("task_max_cost_usd")
        rid = f"{self._id_prefix}{next(self._ids):x}"
        plan = Plan(
            now_ms=now_ms,
            res_key=f"{p}res",
            member=encode_member(rid, caps),
            res_expire_ms=now_ms + self._ttl_ms,
            kill_key=kill_key,
            kill_expire_ms=now_ms + self._kill_ms,
            rates=rates,
            caps=caps,
        )
        return _Prep(
            req, lim, plan, rid, rate_rules, cap_rules, units, tpm_key, est_tok, end, budget_index
        )

    # --- deciding ------------------------------------------------------------------------------

    def _decide(self, prep: _Prep, res: CheckResult, *, local: bool) -> Decision:
        req, lim, plan = prep.req, prep.lim, prep.plan
        now_ms = plan.now_ms
        code = res.code
        if code == RATE_DENY:
            rule = prep.rate_rules[res.index]
            wait = max(1, math.ceil((60_000 - now_ms % 60_000) / 1000))
            what = {
                "rpm": f"{lim.rpm} requests a minute for your account",
                "user_rpm": f"{lim.user_rpm} requests a minute per user",
                "tpm": f"{lim.tpm:,} tokens a minute for your account" if lim.tpm else "",
            }[rule]
            return self._deny(
                req,
                lim,
                now_ms,
                rule,
                wait,
                f"Too many requests: the limit is {what}. Try again in {wait} seconds.",
            )
        if code == CAP_DENY:
            rule = prep.cap_rules[res.index]
            if rule == "hard_limit":
                wait = max(1, math.ceil((prep.period_end - now_ms) / 1000))
                when = dt.datetime.fromtimestamp(prep.period_end / 1000, UTC)
                limit = (
                    _usd(lim.hard_limit or 0)
                    if lim.budget_unit == "usd"
                    else f"{lim.hard_limit:,} tokens"
                )
                return self._deny(
                    req,
                    lim,
                    now_ms,
                    rule,
                    wait,
                    f"You have reached your plan's {lim.period}ly AI usage limit "
                    f"({limit}). It resets on {when:%Y-%m-%d %H:%M} UTC; "
                    "upgrade your plan for more.",
                )
            if rule == "task_max_llm_calls":
                return self._deny(
                    req,
                    lim,
                    now_ms,
                    rule,
                    None,
                    f"This task reached its limit of {lim.task_max_llm_calls} model "
                    "calls. Start a new task, or narrow this one down.",
                )
            return self._deny(
                req,
                lim,
                now_ms,
                rule,
                None,
                f"This task reached its cost limit "
                f"({_usd(lim.task_max_cost or 0)}). Start a new task, or narrow "
                "this one down.",
            )
        if code in (KILLED, KILL_NOW):
            msg = (
                "This session was stopped because it was spending unusually fast "
                f"(over {_usd(lim.session_max_per_hour or 0)} an hour). "
                "Start a new session."
            )
            if code == KILL_NOW:
                self._event(
                    "kill", "session_velocity", req, now_ms, amount=from_micro(res.used[res.index])
                )
                log.warning(
                    "guard killed session %r of customer %r (spend velocity)",
                    req.session_id,
                    req.customer_id,
                )
            else:
                self._event("deny", "session_killed", req, now_ms)
            self.stats["kill"] += 1
            return Decision(
                "kill",
                None,
                "session_killed" if code == KILLED else "session_velocity",
                msg,
                None,
                None,
                lim.graceful,
                lim.tier,
            )
        # every limit passed and the worst case is reserved
        bi = prep.budget_index
        used = res.used[bi]
        bcap = plan.caps[bi]
        bamount = bcap.amount
        if not local:  # what the shared store said: the fail-open fallback starts from it
            self._last_seen[bcap.key] = (used + bamount, bcap.expire_ms)
        action, model, rule = "allow", req.model, None
        hard, soft = lim.hard_limit, lim.soft_limit
        if lim.overage == "soft_cap_degrade" and hard is not None and soft is not None:
            after = used + bamount
            if after > hard:
                cheaper = lim.degrade_model(req.model, to_end=True)
                rule = "hard_limit"
            elif after >= soft:
                cheaper = lim.degrade_model(req.model)
                rule = "soft_threshold"
            else:
                cheaper = None
            if cheaper is not None:
                action, model = "degrade", cheaper
                self._event("degrade", rule or "soft_threshold", req, now_ms, model=cheaper)
            else:
                rule = None
        if res.alerted:
            self._soft_alert(req, lim, now_ms, used + bamount)
        self.stats[action] += 1
        r = Reservation(
            id=prep.rid,
            customer_id=req.customer_id,
            res_key=plan.res_key,
            member=plan.member,
            items=[
                (c.key, c.amount, u, c.expire_ms)
                for c, u in zip(plan.caps, prep.units, strict=True)
            ],
            budget_index=bi,
            tpm_key=prep.tpm_key,
            est_tokens=prep.est_tokens,
            limits=lim,
            request=req,
            model=model,
            local=local,
        )
        return Decision(action, model, rule, None, None, r, lim.graceful, lim.tier)  # type: ignore[arg-type]

    def _deny(
        self, req: Request, lim: Limits, now_ms: int, rule: str, retry: int | None, msg: str
    ) -> Decision:
        self.stats["deny"] += 1
        self._event("deny", rule, req, now_ms)
        return Decision("deny", None, rule, msg, retry, None, lim.graceful, lim.tier)

    def _soft_alert(self, req: Request, lim: Limits, now_ms: int, used: int) -> None:
        self.stats["soft_threshold"] += 1
        self._event("soft_threshold", "soft_threshold", req, now_ms)
        if self.alerter is not None:
            conv: Callable[[int], Any] = from_micro if lim.budget_unit == "usd" else int
            label, _start, _end = _period(lim.period, now_ms)
            self.alerter.post(
                {
                    "kind": "tailguard.soft_threshold",
                    "customer_id": req.customer_id,
                    "tier": lim.tier,
                    "scope": "customer",
                    "period": label,
                    "unit": lim.budget_unit,
                    "used": conv(used),
                    "soft_limit": conv(lim.soft_limit or 0),
                    "hard_limit": conv(lim.hard_limit or 0),
                    "soft_threshold": lim.soft_threshold,
                    "overage": lim.overage,
                    "ts": dt.datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(),
                }
            )

    # --- settling ------------------------------------------------------------------------------

    def _settle_args(
        self, r: Reservation | None, actual: Decimal, itok: int | None, otok: int | None
    ) -> tuple[Reservation, list[SettleItem], list[Rate]] | None:
        if r is None or r.state != "open":
            return None
        r.state = "settled"
        self.stats["settles"] += 1
        micro = to_micro(actual)
        have_tok = itok is not None or otok is not None
        tok = (itok or 0) + (otok or 0) if have_tok else r.est_tokens
        per = {"usd": micro, "tok": tok, "step": 1}
        items = [SettleItem(k, amt, per[u], exp) for k, amt, u, exp in r.items]
        adjust = (
            [Rate(r.tpm_key, 0, tok - r.est_tokens, 0)]
            if r.tpm_key is not None and have_tok and tok != r.est_tokens
            else []
        )
        return r, items, adjust

    def _settled(
        self, r: Reservation, items: list[SettleItem], spent: list[int], actual: Decimal
    ) -> Settlement:
        lim = r.limits
        unit = lim.budget_unit
        bi = r.budget_index or 0
        b_after = spent[bi]
        conv: Callable[[int], Decimal] = from_micro if unit == "usd" else Decimal
        over = Decimal(0)
        if lim.overage == "payg" and lim.hard_limit is not None:
            added = items[bi].actual
            before = b_after - added
            over_units = max(0, b_after - max(lim.hard_limit, before))
            if over_units:
                over = (
                    from_micro(over_units)
                    if unit == "usd"
                    else (actual * over_units / added).quantize(Decimal("0.000001"))
                )
                self.stats["overage"] += 1
                self._event(
                    "overage",
                    "payg",
                    r.request,
                    int(self._clock() * 1000),
                    amount=over,
                    model=r.model,
                )
        return Settlement(conv(b_after), over, unit)

    def _release_items(self, r: Reservation | None) -> list[SettleItem] | None:
        if r is None or r.state != "open":
            return None
        r.state = "released"
        self.stats["releases"] += 1
        return [SettleItem(k, amt, 0, exp) for k, amt, _u, exp in r.items]

    def _release(self, r: Reservation | None) -> None:
        try:
            items = self._release_items(r)
            if items is None or r is None:
                return
            store = self._local if r.local else self.store
            try:
                store.settle(r.res_key, r.member, items, [], self._now_ms())
            except Exception as exc:
                self._mark_down(exc)  # the reservation expires by itself
        except Exception:
            self._count_internal()

    # --- faults --------------------------------------------------------------------------------

    def _route_sync(self) -> Store:
        if self._down_since is None:
            return self.store
        if time.monotonic() < self._next_probe:
            return self._local
        self._next_probe = time.monotonic() + self.policy.settings.probe_interval_s
        try:
            self.store.add_spent(self._pending(), self._now_ms())
        except Exception:
            return self._local
        self._recovered()
        return self.store

    async def _route_async(self) -> Store:
        if self._down_since is None:
            return self.store
        if time.monotonic() < self._next_probe:
            return self._local
        self._next_probe = time.monotonic() + self.policy.settings.probe_interval_s
        try:
            await self.store.asettle("", "", self._pending(), [], self._now_ms())
        except Exception:
            return self._local
        self._recovered()
        return self.store

    def _pending(self) -> list[SettleItem]:
        with self._lock:
            return [SettleItem(k, 0, d, e) for k, (d, e) in self._resync.items() if d]

    def _recovered(self) -> None:
        with self._lock:
            n = sum(1 for d, _e in self._resync.values() if d)
            self._resync.clear()
            down = self._down_since
            self._down_since = None
            self._outage_recorded = False
            self._local = MemoryStore()
        self.stats["resyncs"] += 1
        log.warning(
            "guard store is back after %.1f s; re-synced spend on %d keys",
            time.monotonic() - (down or time.monotonic()),
            n,
        )

    def _mark_down(self, exc: BaseException) -> bool:
        """Record an outage; True if this call started it."""
        self.stats["store_errors"] += 1
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
            self._next_probe = time.monotonic() + self.policy.settings.probe_interval_s
        if first:
            log.warning("guard store unavailable (%s); applying the policy's fail mode", exc)
        return first

    def _degraded(self, prep: _Prep) -> Decision:
        """The shared store is down: deny (fail_closed) or decide on local limits (fail_open)."""
        req, lim, plan = prep.req, prep.lim, prep.plan
        if lim.fail_mode == "fail_closed":
            self.stats["fail_closed"] += 1
            wait = max(1, math.ceil(self.policy.settings.probe_interval_s))
            return self._deny(
                req,
                lim,
                plan.now_ms,
                "guard_unavailable",
                wait,
                "Usage limits cannot be checked right now, so this request was "
                f"not sent. Try again in {wait} seconds.",
            )
        self.stats["fail_open"] += 1
        if not self._outage_recorded:
            self._outage_recorded = True
            # the ledger's guard actions have no "fail_open"; a degrade of the guarantee
            self._event("fail_open", "store_unavailable", req, plan.now_ms, model=req.model)
        for c in plan.caps:
            seen = self._last_seen.get(c.key)
            if seen is not None:
                self._local.seed(c.key, seen[0], seen[1])
        res = self._local.check(plan)
        return self._decide(prep, res, local=True)

    def _settle_unavailable(self, exc: BaseException, items: list[SettleItem]) -> list[int]:
        """The shared store failed at settle: count locally, re-sync when it returns."""
        self._mark_down(exc)
        spent = self._local.settle("", "", items, [], self._now_ms())
        self._buffer(items)
        return spent

    def _push_local(self, items: list[SettleItem]) -> None:
        """Spend settled on the local fallback also belongs in the shared store."""
        if self._down_since is not None:
            self._buffer(items)
            return
        try:
            self.store.add_spent(
                [SettleItem(i.key, 0, i.actual, i.expire_ms) for i in items if i.actual],
                self._now_ms(),
            )
        except Exception as exc:
            self._mark_down(exc)
            self._buffer(items)

    def _buffer(self, items: list[SettleItem]) -> None:
        with self._lock:
            for it in items:
                if it.actual:
                    e = self._resync.setdefault(it.key, [0, it.expire_ms])
                    e[0] += it.actual
                    e[1] = max(e[1], it.expire_ms)

    def _internal_error(self, req: Request) -> Decision:
        self._count_internal()
        try:
            lim = self.limits(req.customer_id, tier=req.tier, seats=req.seats)
            mode, graceful, tier = lim.fail_mode, lim.graceful, lim.tier
        except Exception:
            mode, graceful, tier = self.policy.settings.fail_mode, False, None
        if mode == "fail_closed":
            return Decision(
                "deny",
                None,
                "guard_error",
                "Usage limits cannot be checked right "
                "now, so this request was not sent. Try again shortly.",
                1,
                None,
                graceful,
                tier,
            )
        return Decision("allow", req.model, "guard_error", None, None, None, graceful, tier)

    def _count_internal(self) -> None:
        self.stats["internal_errors"] += 1
        log.exception("guard internal error (the call was not failed because of it)")

    # --- events --------------------------------------------------------------------------------

    def _event(
        self,
        action: str,
        rule: str,
        req: Request,
        now_ms: int,
        *,
        amount: Decimal | None = None,
        model: str | None = None,
    ) -> None:
        if self.sink is None:
            return
        ev = {
            "kind": "guard",
            "event_id": f"g-{self._id_prefix}{next(self._ids):x}",
            "ts": dt.datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(),
            "customer_id": req.customer_id,
            "user_id": req.user_id,
            "feature": req.feature,
            "task_id": req.task_id,
            "session_id": req.session_id,
            "action": action,
            "rule": rule,
            "amount_usd": amount,
            "model": model if model is not None else req.model,
        }
        try:
            self.sink([ev])
        except Exception:
            self.stats["sink_errors"] += 1
            log.exception("guard event sink failed (event %s dropped)", ev["event_id"])


class _Prep:
    """A planned check (internal)."""

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
