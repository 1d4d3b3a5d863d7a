"""Deciding: what a store's answer means for the caller, and the events every decision leaves.

The store only says "every limit passed" or "limit N failed" (``CheckResult``); this module
turns that into a ``Decision`` with the rule's name and a message fit to show a user, meters
payg overage at settle, and records ``guard`` events for the ledger (the sink) and the
soft-threshold webhook. It never touches a store, so the same code reads the shared store's
answer and the fail-open fallback's.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tailguard.errors import GuardError
from tailguard.guard.planning import Prep, period_bounds
from tailguard.guard.policy import Limits
from tailguard.guard.stores.base import CAP_DENY, KILL_NOW, KILLED, RATE_DENY, CheckResult
from tailguard.guard.types import Decision, Request, Reservation, Settlement
from tailguard.guard.units import from_micro
from tailguard.guard.webhook import WebhookAlerter
from tailguard.money import format_usd

log = logging.getLogger("tailguard.guard")

Sink = Callable[[list[dict[str, Any]]], None]
UTC = dt.UTC
_TOKEN_MONEY = Decimal("0.000001")  # payg overage in token units: dollars to the micro-dollar
_ZERO = Decimal(0)
#: a budget period as the deny message says it ("your plan's daily AI usage limit")
_PERIOD_WORD = {"minute": "per-minute", "hour": "hourly", "day": "daily", "month": "monthly"}

STAT_NAMES = (
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
    "invalid_requests",
    "resyncs",
)


def usd(micro: int) -> str:
    """Dollars by the one rule (tailguard.money): cents from $1 up, 4 places below."""
    return format_usd(from_micro(micro))


class Decider:
    """Reads store answers into decisions; owns the guard's counters and its event sink."""

    def __init__(
        self,
        sink: Sink | None,
        alerter: WebhookAlerter | None,
        id_prefix: str,
        clock: Callable[[], float],
    ) -> None:
        self.sink = sink
        self.alerter = alerter
        self.stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)
        self._id_prefix = id_prefix
        self._clock = clock
        self._n = itertools.count(1)  # next() is atomic: ids stay unique across threads

    def decide(self, prep: Prep, res: CheckResult, *, local: bool) -> Decision:
        """The decision for a store's answer; an allowed call carries its ``Reservation``."""
        code = res[0]  # (code, index, used, alerted): CheckResult's shape
        if code == 0:
            return self.allowed(prep, res, local)
        req, lim, now_ms = prep.request, prep.limits, prep.now_ms
        if code == RATE_DENY:
            rule = prep.rate_rules[res[1]]
            wait = max(1, math.ceil((60_000 - now_ms % 60_000) / 1000))
            what = {
                "rpm": f"{lim.rpm} requests a minute for your account",
                "user_rpm": f"{lim.user_rpm} requests a minute per user",
                "tpm": f"{lim.tpm:,} tokens a minute for your account" if lim.tpm else "",
            }[rule]
            return self.deny(
                req,
                lim,
                now_ms,
                rule,
                wait,
                f"Too many requests: the limit is {what}. Try again in {wait} seconds.",
            )
        if code == CAP_DENY:
            rule = prep.cap_rules[res[1]]
            if rule == "hard_limit":
                wait = max(1, math.ceil((prep.period_end - now_ms) / 1000))
                when = dt.datetime.fromtimestamp(prep.period_end / 1000, UTC)
                limit = (
                    usd(lim.hard_limit or 0)
                    if lim.budget_unit == "usd"
                    else f"{lim.hard_limit:,} tokens"
                )
                return self.deny(
                    req,
                    lim,
                    now_ms,
                    rule,
                    wait,
                    f"You have reached your plan's {_PERIOD_WORD[lim.period]} AI usage limit "
                    f"({limit}). It resets on {when:%Y-%m-%d %H:%M} UTC; "
                    "upgrade your plan for more.",
                )
            if rule == "task_max_llm_calls":
                msg = (
                    f"This task reached its limit of {lim.task_max_llm_calls} model "
                    "calls. Start a new task, or narrow this one down."
                )
            else:
                msg = (
                    f"This task reached its cost limit ({usd(lim.task_max_cost or 0)}). "
                    "Start a new task, or narrow this one down."
                )
            return self.deny(req, lim, now_ms, rule, None, msg)
        if code in (KILLED, KILL_NOW):
            msg = (
                "This session was stopped because it was spending unusually fast "
                f"(over {usd(lim.session_max_per_hour or 0)} an hour). "
                "Start a new session."
            )
            if code == KILL_NOW:
                self.event(
                    "kill", "session_velocity", req, now_ms, amount=from_micro(res[2][res[1]])
                )
                log.warning(
                    "guard killed session %r of customer %r (spend velocity)",
                    req.session_id,
                    req.customer_id,
                )
            else:
                self.event("deny", "session_killed", req, now_ms)
            self.stats["kill"] += 1
            rule = "session_killed" if code == KILLED else "session_velocity"
            return Decision("kill", None, rule, msg, None, None, lim.graceful, lim.tier)
        raise GuardError(f"unknown store answer code {code}")

    def allowed(self, prep: Prep, res: CheckResult, local: bool) -> Decision:
        """Every limit passed and the worst case is reserved: allow, or degrade to a cheaper
        model past the soft limit (and past the hard one when its action is to degrade)."""
        req, lim, plan = prep.request, prep.limits, prep
        bi = prep.budget_index
        after = res[2][bi] + plan.caps[bi][2]  # used before + the cap's amount
        action, model, rule = "allow", req.model, None
        hard, soft = lim.hard_limit, lim.soft_limit
        if lim.overage == "soft_cap_degrade" and hard is not None and soft is not None:
            cheaper = None
            if after > hard:
                cheaper, rule = lim.degrade_model(req.model, to_end=True), "hard_limit"
            elif after >= soft:
                cheaper, rule = lim.degrade_model(req.model), "soft_threshold"
            if cheaper is not None:
                action, model = "degrade", cheaper
                self.event("degrade", rule or "soft_threshold", req, plan.now_ms, model=cheaper)
            else:
                rule = None
        if res[3]:  # alerted
            self._soft_alert(req, lim, plan.now_ms, after)
        self.stats[action] += 1
        # the plan is the reservation (planning.Prep): only the model and where it was reserved
        # are new
        prep.model = model
        prep.local = local
        return Decision(action, model, rule, None, None, prep, lim.graceful, lim.tier)  # type: ignore[arg-type]

    def deny(
        self, req: Request, lim: Limits, now_ms: int, rule: str, retry: int | None, msg: str
    ) -> Decision:
        self.stats["deny"] += 1
        self.event("deny", rule, req, now_ms)
        return Decision("deny", None, rule, msg, retry, None, lim.graceful, lim.tier)

    def _soft_alert(self, req: Request, lim: Limits, now_ms: int, used: int) -> None:
        self.stats["soft_threshold"] += 1
        self.event("soft_threshold", "soft_threshold", req, now_ms)
        if self.alerter is not None:
            conv: Callable[[int], Any] = from_micro if lim.budget_unit == "usd" else int
            label, _start, _end = period_bounds(lim.period, now_ms)
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

    def settled(self, r: Reservation, added: int, b_after: int, actual: Decimal) -> Settlement:
        """The settlement of a call: the budget's spend after it, and any payg overage.

        Overage is the part of this call's addition past the hard limit: ``b_after − max(hard,
        b_before)``, in the budget's unit. In token units it is priced at this call's own
        dollars per token (``actual × over_tokens ÷ added_tokens``), rounded half-even to the
        micro-dollar.
        """
        lim = r.limits
        unit = lim.budget_unit
        over = _ZERO
        if lim.overage == "payg" and lim.hard_limit is not None:
            over_units = max(0, b_after - max(lim.hard_limit, b_after - added))
            if over_units:
                over = (
                    from_micro(over_units)
                    if unit == "usd"
                    else (actual * over_units / added).quantize(_TOKEN_MONEY)
                )
                self.stats["overage"] += 1
                self.event(
                    "overage",
                    "payg",
                    r.request,
                    int(self._clock() * 1000),
                    amount=over,
                    model=r.model,
                )
        return Settlement(b_after, over, unit)

    def event(
        self,
        action: str,
        rule: str,
        req: Request,
        now_ms: int,
        *,
        amount: Decimal | None = None,
        model: str | None = None,
    ) -> None:
        """Hand one ``guard`` event to the sink; a failing sink is counted, never raised."""
        if self.sink is None:
            return
        ev = {
            "kind": "guard",
            "event_id": f"g-{self._id_prefix}{next(self._n):x}",
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
