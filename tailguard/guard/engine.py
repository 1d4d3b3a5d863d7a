"""The guard engine: decide before the call, settle after it.

``Guard.check(request)`` plans every limit that applies (``tailguard.guard.planning``: rate
windows, the period budget, task step and dollar ceilings, the session's spend velocity), has
the store check and reserve all of it atomically, and reads the answer into a ``Decision``
(``tailguard.guard.deciding``). ``settle`` replaces the reserved worst case with the actual
cost; ``release`` refunds it when the call failed. The ``a``-prefixed methods are the same for
asyncio: each public pair shares its planning and reading, and differs only in the one store
call (awaited on Redis; the memory store never blocks). While a shared store is down,
``tailguard.guard.failover`` applies the policy's fail mode and catches up afterwards.

Overspend bound (docs/guard.md): under ``hard_cap`` (and ``soft_cap_degrade`` with
``hard_limit_action = "deny"``) settled spend never passes the hard limit, at any concurrency,
as long as every call's actual cost is within its estimate and is settled before its
reservation expires; otherwise by at most the sum of those under-estimates. With the shared
store down under ``fail_open``, see ``tailguard.guard.failover`` for the bound.

Never raises to the caller: a store failure applies the policy's ``fail_mode``; a request the
guard cannot plan (numbers out of range) is denied alone (``invalid_request``); an unexpected
internal error is logged, counted in ``stats`` and decided by the fail mode for that call only.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tailguard.guard.deciding import Decider, Sink
from tailguard.guard.failover import Failover
from tailguard.guard.planning import (
    Compiled,
    Planner,
    Prep,
    budget_key,
    key_id,
    release_items,
    settle_items,
    why_invalid,
)
from tailguard.guard.policy import CustomerInfo, Limits, Policy
from tailguard.guard.stores.base import SettleItem, Store
from tailguard.guard.stores.memory import MemoryStore
from tailguard.guard.types import Decision, Request, Reservation, Settlement
from tailguard.guard.units import MAX_TOKENS, MAX_USD, from_micro, micro_in_range, to_micro
from tailguard.guard.webhook import WebhookAlerter

log = logging.getLogger("tailguard.guard")

__all__ = ["Guard", "Sink"]

UTC = dt.UTC
_ZERO = Decimal(0)


_time_ns = time.time_ns


def _system_ms() -> int:
    return _time_ns() // 1_000_000


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
        #: milliseconds now: integer nanoseconds from the system clock (no float product) unless
        #: a test clock is given
        self._now_ms: Callable[[], int] = (
            _system_ms if clock is None else lambda: int(self._clock() * 1000)
        )
        #: no test clock: the hot path reads ``time_ns`` itself (one Python call fewer)
        self._system_clock = clock is None
        self._customers: Mapping[str, CustomerInfo] = customers or {}
        #: the resolved limits, compiled for planning, by customer id when the call names no
        #: tier and no seats (the common case: no tuple to build and hash), else by (customer,
        #: tier, seats); a string key never equals a tuple key
        self._compiled: dict[str | tuple[str, str | None, int | None], Compiled] = {}
        s = policy.settings
        # the in-process store refunds an expired reservation from its plan: no member to encode
        self._planner = Planner(s, encode_members=not isinstance(self.store, MemoryStore))
        alerter = (
            WebhookAlerter(s.webhook_url, timeout_s=s.webhook_timeout_s) if s.webhook_url else None
        )
        self._decider = Decider(sink, alerter, self._planner.id_prefix, self._clock)
        self.stats: dict[str, int] = self._decider.stats
        #: the in-process store, settled from the plan itself (``_settle_in_process``)
        self._memory = self.store if isinstance(self.store, MemoryStore) else None
        # an in-process store cannot be "down": only a shared one needs the failover
        self._failover = (
            None
            if isinstance(self.store, MemoryStore)
            else Failover(self.store, s, self._decider, self._now_ms, self._planner.id_prefix)
        )

    @property
    def alerter(self) -> WebhookAlerter | None:
        """The soft-threshold webhook, when the policy names one."""
        return self._decider.alerter

    # --- check ---------------------------------------------------------------------------------

    def check(self, request: Request) -> Decision:
        """Decide on one call and reserve its worst case; never raises."""
        try:
            prep = self._prepare(request)
            if type(prep) is Decision:
                return prep
            assert isinstance(prep, Prep)
            fo = self._failover
            if fo is None:
                res = self.store.check(prep)
                if res[0] == 0:  # OK: straight to the allowed decision (one call fewer)
                    return self._decider.allowed(prep, res, False)
                return self._decider.decide(prep, res, local=False)
            if fo.down_since is not None and not (fo.due() and fo.probe_sync()):
                return fo.degraded(prep)
            try:
                res = self.store.check(prep)
            except Exception as exc:
                return self._check_failed(fo, prep, exc)
            fo.observe(prep, res)
            return self._decider.decide(prep, res, local=False)
        except Exception:
            return self._internal_error(request)

    async def acheck(self, request: Request) -> Decision:
        """``check`` for asyncio: awaits Redis; never blocks the loop on the memory store."""
        try:
            prep = self._prepare(request)
            if type(prep) is Decision:
                return prep
            assert isinstance(prep, Prep)
            fo = self._failover
            if fo is None:
                return self._decider.decide(prep, await self.store.acheck(prep), local=False)
            if fo.down_since is not None and not (fo.due() and await fo.probe_async()):
                return fo.degraded(prep)
            try:
                res = await self.store.acheck(prep)
            except Exception as exc:
                return self._check_failed(fo, prep, exc)
            fo.observe(prep, res)
            return self._decider.decide(prep, res, local=False)
        except Exception:
            return self._internal_error(request)

    def _prepare(self, req: Request) -> Prep | Decision:
        """Plan a call (shared by ``check`` and ``acheck``), or refuse it before any store."""
        self.stats["checks"] += 1
        # the estimate in micro-dollars (rounded up) when every number of the request is in
        # range, in one expression (this runs on every check); else None, and ``why_invalid``
        # says why, or that it is valid after all (a ``seats`` override or an ``int`` estimate
        # take the slow road)
        i, o = req.input_tokens, req.max_output_tokens
        est = (
            micro_in_range(req.estimated_cost_usd)
            if type(i) is int
            and type(o) is int
            and req.seats is None
            and 0 <= i <= MAX_TOKENS
            and 0 <= o <= MAX_TOKENS
            else None
        )
        bad = None
        if est is None:  # out of range, or in range by the slow road (seats, an int estimate)
            bad = why_invalid(req)
            if bad is None:
                est = to_micro(req.estimated_cost_usd)
        seats = None if bad else req.seats
        cid, tier = req.customer_id, req.tier
        c = self._compiled.get(cid if tier is None and seats is None else (cid, tier, seats))
        if c is None:  # (inlined: every check)
            c = self._compile(cid, tier, seats)
        lim = c.lim
        now_ms = _time_ns() // 1_000_000 if self._system_clock else self._now_ms()
        if bad is not None or est is None:
            self.stats["invalid_requests"] += 1
            return self._decider.deny(
                req, lim, now_ms, "invalid_request", None, f"This request was not sent: {bad}."
            )
        if lim.max_input_tokens is not None and req.input_tokens > lim.max_input_tokens:
            return self._decider.deny(
                req,
                lim,
                now_ms,
                "max_input_tokens",
                None,
                f"This prompt is too long: {req.input_tokens:,} tokens, the limit is "
                f"{lim.max_input_tokens:,}. Shorten it or attach less.",
            )
        return self._planner.plan(req, c, now_ms, est)

    def _check_failed(self, fo: Failover, prep: Prep, exc: Exception) -> Decision:
        """The shared store raised. Unavailable (retryable): an outage, for everyone. Anything
        else (a script refusing this call's data, an encoding error): this call alone."""
        if getattr(exc, "retryable", False):
            fo.mark_down(exc, prep)
            return fo.degraded(prep)
        log.error("guard store refused one check (%s); the store stays in use", exc)
        return self._internal_error(prep.request)

    # --- settle and release --------------------------------------------------------------------

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
            r = reservation  # (``_settle_args`` inlined: this runs after every allowed call)
            if r is None or r.state != "open":
                return Settlement()
            r.state = "settled"
            self.stats["settles"] += 1
            micro = micro_in_range(actual_cost_usd)
            if micro is None:
                micro = self._unusable_actual(r, actual_cost_usd)
            if self._memory is not None and type(r) is Prep:
                return self._settle_in_process(
                    self._memory, r, micro, input_tokens, output_tokens, actual_cost_usd
                )
            items, adjust = settle_items(r, micro, input_tokens, output_tokens)
            fo = self._failover
            now = _time_ns() // 1_000_000 if self._system_clock else self._now_ms()
            if fo is None:
                spent = self.store.settle(r.res_key, r.member, items, adjust, now, r.id)
            elif r.local:
                spent = fo.local.settle(r.res_key, r.member, items, adjust, now)
                rp = fo.push_local(r, items)
                if rp is not None:
                    try:
                        self.store.settle(rp.res_key, "", rp.items, [], now, rp.settle_id)
                    except Exception as exc:
                        fo.send_failed(exc, rp)
            elif fo.down_since is not None:
                spent = fo.settle_failed(None, r, items)
            else:
                try:
                    spent = self.store.settle(r.res_key, r.member, items, adjust, now, r.id)
                except Exception as exc:
                    spent = fo.settle_failed(exc, r, items)
            bi = r.budget_index or 0
            lim = r.limits
            if lim.overage != "payg":  # no overage to meter (``Decider.settled``'s first test)
                return Settlement(spent[bi], _ZERO, lim.budget_unit)
            return self._decider.settled(r, items[bi][2], spent[bi], actual_cost_usd)  # actual
        except Exception:
            self._count_internal()
            return Settlement()

    def _settle_in_process(
        self,
        store: MemoryStore,
        r: Prep,
        micro: int,
        itok: int | None,
        otok: int | None,
        actual: Decimal,
    ) -> Settlement:
        """``settle`` on the in-process store: the plan settled by the store itself
        (``MemoryStore.settle_plan``), the same amounts as ``planning.settle_items``' items."""
        if itok is None and otok is None:
            tok, tok_adjust = r.est_tokens, 0
        else:  # each count below 0 (or None) counts 0; the sum at most MAX_TOKENS
            tok = (itok if itok is not None and itok > 0 else 0) + (
                otok if otok is not None and otok > 0 else 0
            )
            if tok > MAX_TOKENS:
                tok = MAX_TOKENS
            tok_adjust = tok - r.est_tokens  # the token window: actual minus estimated tokens
        b_after = store.settle_plan(r, micro, tok, tok_adjust)
        lim = r.limits
        if lim.overage != "payg":  # no overage to meter (``Decider.settled``'s first test)
            return Settlement(b_after, _ZERO, lim.budget_unit)
        added = micro if lim.budget_unit == "usd" else tok
        return self._decider.settled(r, added, b_after, actual)

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
            fo, now = self._failover, self._now_ms()
            if fo is None:
                spent = await self.store.asettle(r.res_key, r.member, items, adjust, now, r.id)
            elif r.local:
                spent = fo.local.settle(r.res_key, r.member, items, adjust, now)
                rp = fo.push_local(r, items)
                if rp is not None:
                    try:
                        await self.store.asettle(rp.res_key, "", rp.items, [], now, rp.settle_id)
                    except Exception as exc:
                        fo.send_failed(exc, rp)
            elif fo.down_since is not None:
                spent = fo.settle_failed(None, r, items)
            else:
                try:
                    spent = await self.store.asettle(r.res_key, r.member, items, adjust, now, r.id)
                except Exception as exc:
                    spent = fo.settle_failed(exc, r, items)
            bi = r.budget_index or 0
            return self._decider.settled(r, items[bi][2], spent[bi], actual_cost_usd)  # actual
        except Exception:
            self._count_internal()
            return Settlement()

    def _settle_args(
        self, r: Reservation | None, actual: Decimal, itok: int | None, otok: int | None
    ) -> tuple[Reservation, list[SettleItem], list[Any]] | None:
        """``asettle``'s items to move, once per reservation (``settle`` does the same inline)."""
        if r is None or r.state != "open":
            return None
        r.state = "settled"
        self.stats["settles"] += 1
        micro = micro_in_range(actual)
        if micro is None:
            micro = self._unusable_actual(r, actual)
        items, adjust = settle_items(r, micro, itok, otok)
        return r, items, adjust

    def _unusable_actual(self, r: Reservation, actual: object) -> int:
        """Money spent is never forgotten, and a number the stores cannot count is never
        passed on: an unusable actual cost is replaced by the call's reserved estimate."""
        micro = to_micro(r.request.estimated_cost_usd)
        self.stats["invalid_requests"] += 1
        log.error(
            "guard settle of customer %r: actual cost %r is not a dollar amount from 0 to "
            "%s; counted the reserved estimate $%s instead",
            r.customer_id,
            actual,
            MAX_USD,
            from_micro(micro),
        )
        return micro

    def release(self, reservation: Reservation | None) -> None:
        """Refund a reservation whose call failed or never happened (nothing was spent)."""
        try:
            plan = self._release_plan(reservation)
            if plan is None:
                return
            r, items, store = plan
            try:
                store.settle(r.res_key, r.member, items, [], self._now_ms())
            except Exception as exc:
                self._release_failed(r, items, exc)
        except Exception:
            self._count_internal()

    async def arelease(self, reservation: Reservation | None) -> None:
        """``release`` for asyncio."""
        try:
            plan = self._release_plan(reservation)
            if plan is None:
                return
            r, items, store = plan
            try:
                await store.asettle(r.res_key, r.member, items, [], self._now_ms())
            except Exception as exc:
                self._release_failed(r, items, exc)
        except Exception:
            self._count_internal()

    def _release_plan(
        self, reservation: Reservation | None
    ) -> tuple[Reservation, list[SettleItem], Any] | None:
        """What ``release``/``arelease`` send and to which store; None when there is nothing to
        send (no open reservation, or Redis is down and the refund is kept as an orphan)."""
        items = self._release_items(reservation)
        if items is None or reservation is None:
            return None
        r, fo = reservation, self._failover
        if fo is not None and not r.local and fo.down_since is not None:
            fo.release_failed(r, items)
            return None
        store = fo.local if fo is not None and r.local else self.store
        return r, items, store

    def _release_failed(self, r: Reservation, items: list[SettleItem], exc: Exception) -> None:
        fo = self._failover
        if fo is None:
            raise exc
        if fo.mark_down(exc):  # else logged; the reservation expires by itself
            fo.release_failed(r, items)

    def _release_items(self, r: Reservation | None) -> list[SettleItem] | None:
        if r is None or r.state != "open":
            return None
        r.state = "released"
        self.stats["releases"] += 1
        return release_items(r)

    # --- customers, limits, status -------------------------------------------------------------

    @property
    def customers(self) -> Mapping[str, CustomerInfo]:
        """The customers table; assigning a new one takes effect on the next check."""
        return self._customers

    @customers.setter
    def customers(self, table: Mapping[str, CustomerInfo]) -> None:
        self._customers = table
        self._compiled = {}

    def revive(self, customer_id: str, session_id: str) -> bool:
        """Lift a session kill (an operator's decision); True if the session was killed."""
        return self.store.clear_flag(f"tg:{{{key_id(customer_id)}}}:k:{key_id(session_id)}")

    def limits(
        self, customer_id: str, *, tier: str | None = None, seats: int | None = None
    ) -> Limits:
        """A customer's resolved limits (policy + customers table)."""
        return self._compile(customer_id, tier, seats).lim

    def _compile(self, customer_id: str, tier: str | None, seats: int | None) -> Compiled:
        """The customer's limits, resolved and compiled for planning once, then cached."""
        key = customer_id if tier is None and seats is None else (customer_id, tier, seats)
        c = self._compiled.get(key)
        if c is None:
            if len(self._compiled) > 100_000:
                self._compiled.clear()
            lim = self.policy.limits_for(
                customer_id, info=self.customers.get(customer_id), tier=tier, seats=seats
            )
            c = self._compiled[key] = Compiled(customer_id, lim)
        return c

    def status(
        self, customer_id: str, *, tier: str | None = None, seats: int | None = None
    ) -> dict[str, Any]:
        """Spend, limits, headroom and the projected cap-hit date from the current pace."""
        lim = self.limits(customer_id, tier=tier, seats=seats)
        now_ms = self._now_ms()
        key, start, end = budget_key(customer_id, lim, now_ms)
        res_key = f"tg:{{{key_id(customer_id)}}}:res"
        spent, reserved = self.store.read([key], now_ms, res_key)[0]
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
        if self._failover is not None:
            self._failover.close()

    # --- internal errors -----------------------------------------------------------------------

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
