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
from collections.abc import Callable
from decimal import Decimal

from tailguard.guard.policy import Limits, Settings
from tailguard.guard.stores.base import (
    DENY,
    IGNORE,
    KILL,
    SEP_FIELD,
    SEP_ITEM,
    Cap,
    Rate,
    SettleItem,
    encode_member,
)
from tailguard.guard.types import Request, Reservation
from tailguard.guard.units import MAX_TOKENS, MAX_USD

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


def why_invalid(req: Request) -> str | None:
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


class Prep(Reservation):
    """A planned check: the store's ``Plan``, what deciding needs to read the store's answer,
    and, once the call is allowed, the caller's ``Reservation`` itself (deciding sets its
    ``model`` and ``local``). One object per check instead of a plan, a reservation and a plan
    wrapped in another: a check builds it every time."""

    __slots__ = (
        "cap_rules",
        "entries",
        "kill_expire_ms",
        "kill_key",
        "now_ms",
        "period_end",
        "rate_rules",
        "rates",
        "res_expire_ms",
    )

    def __init__(
        self,
        now_ms: int,
        res_key: str,
        member: str,
        res_expire_ms: int,
        kill_key: str | None,
        kill_expire_ms: int,
        rates: list[Rate],
        caps: list[Cap],
        req: Request,
        lim: Limits,
        rid: str,
        rate_rules: list[str],
        cap_rules: list[str],
        units: list[str],
        tpm_key: str | None,
        est_tokens: int,
        period_end: int,
        budget_index: int,
    ) -> None:
        # the reservation's fields (types.Reservation)
        self.id = rid
        self.customer_id = req.customer_id
        self.res_key = res_key
        self.member = member
        self.caps = caps
        self.units = units
        self.budget_index = budget_index
        self.tpm_key = tpm_key
        self.est_tokens = est_tokens
        self.limits = lim
        self.request = req
        self.model = req.model
        self.local = False
        self.state = "open"
        # the plan's and deciding's
        self.now_ms = now_ms
        self.res_expire_ms = res_expire_ms
        self.kill_key = kill_key
        self.kill_expire_ms = kill_expire_ms
        self.rates = rates
        self.rate_rules = rate_rules
        self.cap_rules = cap_rules
        self.period_end = period_end
        self.entries = None  # the memory store's (stores.base.Plan)


class Compiled:
    """One customer's limits as planning uses them, worked out once instead of on every call.

    The guard keeps one per (customer, tier, seats) beside the resolved ``Limits``: the key
    prefix, the budget cap's constants (limit, alert threshold, what exceeding it does) and the
    current budget period's keys. The period is an integer window ``[start_ms, end_ms)``: a check
    inside it compares two integers; only the first check of a new period formats its keys (one
    ``datetime`` for a day or month label), so the hot path never touches a calendar.
    """

    __slots__ = (
        "hard",
        "lean",
        "lim",
        "minute_w",
        "on_exceed",
        "prefix",
        "res_key",
        "rules_no_user",
        "rules_user",
        "shapes",
        "soft",
        "tasks",
        "units",
        "usd",
        "window",
    )

    def __init__(self, customer_id: str, lim: Limits) -> None:
        self.lim = lim
        self.prefix = p = f"tg:{{{key_id(customer_id)}}}:"
        self.res_key = f"{p}res"
        self.usd = lim.budget_unit == "usd"
        self.units = _USD if self.usd else _TOK
        hard = lim.hard_limit
        self.hard = hard if hard is not None else -1
        self.soft = lim.soft_limit if lim.soft_limit is not None else -1
        deny_over = hard is not None and (
            lim.overage == "hard_cap"
            or (lim.overage == "soft_cap_degrade" and lim.hard_limit_action == "deny")
        )
        self.on_exceed = DENY if deny_over else IGNORE
        #: no account-wide rate limit: a request with no user, session or task limit to count
        #: plans its budget alone (``Planner.plan``'s first branch)
        self.lean = lim.rpm is None and lim.tpm is None
        #: a task ceiling to count (steps or dollars)
        self.tasks = lim.task_max_llm_calls is not None or lim.task_max_cost is not None
        #: ``(start_ms, end_ms, budget key, alert key or None, budget expiry)``; replaced whole
        #: (one assignment), so a thread never reads half of a new period
        self.window: tuple[int, int, str, str | None, int] = (0, 0, "", None, 0)
        #: ``(minute, windows' expiry, the rpm window or None, the tpm key or None, the
        #: minute as a key's text)`` of the current minute, replaced whole like ``window``. The
        #: rpm ``Rate`` is one tuple shared by every plan of the minute (its amount is always
        #: one call)
        self.minute_w: tuple[int, int, Rate | None, str | None, str] = (-1, 0, None, None, "")
        rate_rules = [r for r, v in (("rpm", lim.rpm), ("user_rpm", lim.user_rpm)) if v is not None]
        if lim.tpm is not None:
            rate_rules.append("tpm")
        #: the rate windows' rule names, in plan order, with and without a user window
        self.rules_user = rate_rules
        self.rules_no_user = [r for r in rate_rules if r != "user_rpm"]
        #: ``(units, cap rules, budget index)`` per cap shape (``_shape``), shared by its plans
        self.shapes = tuple(_shape_lists(k, lim.budget_unit) for k in range(8))

    def period(self, now_ms: int) -> tuple[int, int, str, str | None, int]:
        """The budget period holding ``now_ms``: the cached window, or the next one."""
        w = self.window
        if w[0] <= now_ms < w[1]:
            return w
        label, start, end = period_bounds(self.lim.period, now_ms)
        p = self.prefix
        akey = f"{p}a:{label}" if self.lim.soft_limit is not None else None
        w = (start, end, f"{p}b:{self.lim.budget_unit}:{label}", akey, end + KEEP_MS)
        self.window = w
        return w

    def minute(self, minute: int) -> tuple[int, int, Rate | None, str | None, str]:
        """The customer's rate windows of ``minute``: the cached ones, or the next ones."""
        w = self.minute_w
        if w[0] == minute:
            return w
        lim, p = self.lim, self.prefix
        rexp = (minute + 2) * 60_000
        rpm = (f"{p}rm:{minute}", lim.rpm, 1, rexp) if lim.rpm is not None else None
        tpm_key = f"{p}tm:{minute}" if lim.tpm is not None else None
        w = (minute, rexp, rpm, tpm_key, str(minute))  # type: ignore[assignment]
        self.minute_w = w
        return w


#: cap shapes: a session velocity cap first (4), then the budget, then a task's step (2) and
#: dollar (1) ceilings
_VELOCITY, _TASK_STEPS, _TASK_USD = 4, 2, 1


def _shape_lists(shape: int, budget_unit: str) -> tuple[list[str], list[str], int]:
    """The unit and rule lists of a plan whose caps are ``shape``, and the budget's index."""
    units, cap_rules = [budget_unit], ["hard_limit"]
    if shape & _VELOCITY:
        units.insert(0, "usd")
        cap_rules.insert(0, "session_velocity")
    if shape & _TASK_STEPS:
        units.append("step")
        cap_rules.append("task_max_llm_calls")
    if shape & _TASK_USD:
        units.append("usd")
        cap_rules.append("task_max_cost_usd")
    return units, cap_rules, 1 if shape & _VELOCITY else 0


#: shared, never mutated: the unit and rule lists of a budget-only plan
_USD = ["usd"]
_TOK = ["tok"]
_BUDGET_ONLY = ["hard_limit"]
_NO_RATES: list[Rate] = []
_NO_RULES: list[str] = []


class Planner:
    """Builds plans; holds the id counter and the reservation and kill time-outs.

    ``encode_members``: a reservation's member names its own refunds (``encode_member``), as
    the Redis store's scripts need; the in-process store keeps each live plan itself and
    refunds from its caps, so its members are the reservation id alone (False: four key
    strings and a join fewer per check of seven limits)."""

    def __init__(self, settings: Settings, *, encode_members: bool = True) -> None:
        self._ttl_ms = settings.reservation_ttl_s * 1000
        self._kill_ms = settings.kill_ttl_s * 1000
        self._ids = itertools.count()
        self.encode_members = encode_members
        #: random per process, so reservation and settle ids never collide across replicas
        self.id_prefix = os.urandom(6).hex()
        #: the next reservation id: the prefix and the counter in hex, formatted in C (one call
        #: instead of an f-string's attribute lookups and format spec; atomic under the GIL)
        self.next_id: Callable[[], str] = map(f"{self.id_prefix}%x".__mod__, self._ids).__next__
        #: ``(start_ms, end_ms, hour, previous hour, velocity expiry)`` of the current UTC hour,
        #: the hours as a key's text; replaced whole (one assignment) like ``Compiled.window``
        self._hour_w: tuple[int, int, str, str, int] = (0, 0, "", "", 0)

    def _hour(self, now_ms: int) -> tuple[int, int, str, str, int]:
        hour = now_ms // 3_600_000
        w = (
            hour * 3_600_000,
            (hour + 1) * 3_600_000,
            str(hour),
            str(hour - 1),
            (hour + 2) * 3_600_000,
        )
        self._hour_w = w
        return w

    def plan(self, req: Request, c: Compiled, now_ms: int, est: int) -> Prep:
        """Every counter this call touches, in the order the store checks them.

        ``est`` is the request's estimate in micro-dollars (``to_micro``, rounded up). Caps are
        ordered so a runaway session is killed (velocity first) before a budget denies, and the
        budget is checked before task ceilings; ``budget_index`` says where it is. Rates and
        caps are plain tuples of the ``Rate`` and ``Cap`` shapes (``stores.base``).
        """
        lim = c.lim
        w = c.window
        if not w[0] <= now_ms < w[1]:
            w = c.period(now_ms)
        _start, end, bkey, akey, bexp = w
        est_tok = req.input_tokens + req.max_output_tokens
        amount = est if c.usd else est_tok
        budget = (bkey, c.hard, amount, c.on_exceed, bexp, None, 0, akey, c.soft)
        rid = self.next_id()
        uid, sid, tid = req.user_id, req.session_id, req.task_id
        if (
            c.lean
            and sid is None
            and (uid is None or lim.user_rpm is None)
            and (tid is None or not c.tasks)
        ):  # the budget alone: no lists built, no key but the budget's (the common case)
            return Prep(
                now_ms,
                c.res_key,
                f"{rid}{SEP_ITEM}{bkey}{SEP_FIELD}{amount}" if self.encode_members else rid,
                now_ms + self._ttl_ms,
                None,
                now_ms + self._kill_ms,
                _NO_RATES,
                [budget],  # type: ignore[list-item]
                req,
                lim,
                rid,
                _NO_RULES,
                _BUDGET_ONLY,
                c.units,
                None,
                est_tok,
                end,
                0,
            )
        p = c.prefix
        mw = c.minute_w
        if mw[0] != now_ms // 60_000:
            mw = c.minute(now_ms // 60_000)
        _m, rexp, rpm, tpm_key, mstr = mw
        rates: list[Rate] = [rpm] if rpm is not None else []
        urpm = lim.user_rpm
        if uid is not None and urpm is not None:
            u = uid if uid.isprintable() else key_id(uid)
            rates.append((f"{p}u:{u}:{mstr}", urpm, 1, rexp))  # type: ignore[arg-type]
            rate_rules = c.rules_user
        else:
            rate_rules = c.rules_no_user
        if tpm_key is not None:
            rates.append((tpm_key, lim.tpm, est_tok, rexp))  # type: ignore[arg-type]
        kill_key = None
        shape = 0
        caps: list[Cap]
        if sid is not None:
            s = sid if sid.isprintable() else key_id(sid)
            kill_key = f"{p}k:{s}"
            vmax = lim.session_max_per_hour
            if vmax is not None:
                hw = self._hour_w
                if not hw[0] <= now_ms < hw[1]:
                    hw = self._hour(now_ms)
                _hs, hend, hour, prev, hexp = hw
                # the previous hour's share: the part of it still inside the sliding hour
                velocity = (
                    f"{p}v:{s}:{hour}",
                    vmax,
                    est,
                    KILL,
                    hexp,
                    f"{p}v:{s}:{prev}",
                    (hend - now_ms) * 10_000 // 3_600_000,
                    None,
                    -1,
                )
                caps = [velocity, budget]  # type: ignore[list-item]
                shape = _VELOCITY
            else:
                caps = [budget]  # type: ignore[list-item]
        else:
            caps = [budget]  # type: ignore[list-item]
        if tid is not None:
            t = tid if tid.isprintable() else key_id(tid)
            texp = now_ms + TASK_TTL_MS
            steps = lim.task_max_llm_calls
            if steps is not None:
                caps.append((f"{p}ts:{t}", steps, 1, DENY, texp, None, 0, None, -1))  # type: ignore[arg-type]
                shape |= _TASK_STEPS
            tusd = lim.task_max_cost
            if tusd is not None:
                caps.append((f"{p}t:{t}", tusd, est, DENY, texp, None, 0, None, -1))  # type: ignore[arg-type]
                shape |= _TASK_USD
        units, cap_rules, budget_index = c.shapes[shape]
        return Prep(
            now_ms,
            c.res_key,
            encode_member(rid, caps) if self.encode_members else rid,
            now_ms + self._ttl_ms,
            kill_key,
            now_ms + self._kill_ms,
            rates,
            caps,
            req,
            lim,
            rid,
            rate_rules,
            cap_rules,
            units,
            tpm_key,
            est_tok,
            end,
            budget_index,
        )


def settle_items(
    r: Reservation, micro: int, itok: int | None, otok: int | None
) -> tuple[list[SettleItem], list[Rate]]:
    """What a settle moves: each reserved amount replaced by its actual (dollars, tokens, one
    step), and the token-rate window corrected by actual minus estimated tokens."""
    have_tok = itok is not None or otok is not None
    if have_tok:  # each count below 0 (or None) counts 0; the sum at most MAX_TOKENS
        # (conditionals, not min/max: three builtin calls cost more than the rest of this)
        tok = (itok if itok is not None and itok > 0 else 0) + (
            otok if otok is not None and otok > 0 else 0
        )
        if tok > MAX_TOKENS:
            tok = MAX_TOKENS
    else:
        tok = r.est_tokens
    # plain (key, reserved, actual, expire_ms) tuples: a SettleItem's shape (see its docstring);
    # caps are (key, limit, amount, on_exceed, expire_ms, ...) tuples: amount [2], expiry [4]
    caps = r.caps
    if len(caps) == 1:  # a budget alone (this runs on every settle)
        c = caps[0]
        items = [(c[0], c[2], micro if r.units[0] == "usd" else tok, c[4])]
    else:
        # units are the plan shape's list, one per cap by construction; a loop that unpacks
        # each cap costs ~60% of a comprehension over a zip (a function call of its own)
        units = r.units
        items = []
        for i, (key, _limit, amount, _on, expire_ms, _pk, _pb, _ak, _aa) in enumerate(caps):
            u = units[i]
            items.append(
                (key, amount, micro if u == "usd" else tok if u == "tok" else 1, expire_ms)
            )
    adjust = (
        [(r.tpm_key, 0, tok - r.est_tokens, 0)]
        if r.tpm_key is not None and have_tok and tok != r.est_tokens
        else []
    )
    return items, adjust  # type: ignore[return-value]


def release_items(r: Reservation) -> list[SettleItem]:
    """A release refunds every reserved amount and adds nothing."""
    return [(c[0], c[2], 0, c[4]) for c in r.caps]  # type: ignore[misc]  # SettleItem's shape
