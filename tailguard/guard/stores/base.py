"""What the engine asks a store to do, atomically, and the shape every store has.

The engine (``tailguard.guard.planning``) turns a request into a ``Plan``: rate windows to count,
capped counters to reserve against, a session kill flag, a soft-threshold alert flag. A store
executes the whole plan as one atomic step (a lock for the memory store, one Lua script and one
round trip for Redis) and answers with a ``CheckResult``. Keeping the decision logic in the
engine and only "check all, then apply all" in the store is what lets two very different stores
share one conformance suite.

Counters (all integers; money in micro-dollars, see ``tailguard.guard.units``):

- a **rate** key is a plain count in a fixed one-minute window: ``count + amount <= limit``;
- a **cap** key holds ``spent`` (settled) and ``reserved`` (in flight); ``spent + reserved +
  amount <= limit`` (plus an optional share of the previous window's spent, for the sliding
  one-hour session velocity). ``on_exceed`` says what failing it means: ignore (payg, metering
  only), deny, or kill (set the session's kill flag).

A reservation is one member of the customer's reservation sorted set, scored by its expiry and
naming the amounts it reserved (``encode_member``). Any check of that customer first refunds the
expired ones, so a crashed caller never leaks budget for longer than ``reservation_ttl_s``.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

# CheckResult.code values
OK = 0
RATE_DENY = 1
CAP_DENY = 2
KILLED = 3  # the session was already killed
KILL_NOW = 4  # this request tripped the session velocity limit

IGNORE, DENY, KILL = 0, 1, 2

SEP_ITEM = "\x1e"
SEP_FIELD = "\x1f"  # (both written as literals in encode_member: no global lookups per cap)


class Rate(NamedTuple):
    """A rate window to count: ``count + amount <= limit``. The shape of the plain 4-tuples
    planning builds: stores read rates by position (``key, limit, amount, expire_ms =
    rate``), never by name, because building a tuple costs a fraction of a class instance
    (measured here: ~40 ns against ~180 ns for a slotted dataclass, ~130 ns for a named
    tuple), and a seven-limit check builds two rates and four caps."""

    key: str
    limit: int
    amount: int
    expire_ms: int


class Cap(NamedTuple):
    """A capped counter to reserve against; the shape of planning's plain 9-tuples (read by
    position, like ``Rate``: ``key, limit, amount, on_exceed, expire_ms, prev_key,
    prev_weight_bp, alert_key, alert_at = cap``)."""

    key: str
    limit: int  # -1: no limit (metered only)
    amount: int
    on_exceed: int
    expire_ms: int
    prev_key: str | None = None
    prev_weight_bp: int = 0  # share of the previous window's spent, in basis points
    alert_key: str | None = None
    alert_at: int = -1  # set alert_key (once) when used + amount >= alert_at


#: positions in a cap tuple that the engine reads one at a time
CAP_KEY, CAP_AMOUNT, CAP_ON_EXCEED, CAP_EXPIRE = 0, 2, 3, 4


class Plan(Protocol):
    """What a store checks and reserves in one atomic step. ``planning.Prep`` is the one
    implementation: the same object goes on to be the caller's ``Reservation`` (one object per
    check instead of three)."""

    now_ms: int
    res_key: str  # the customer's reservation sorted set
    member: str  # this reservation (encode_member)
    res_expire_ms: int
    kill_key: str | None
    kill_expire_ms: int
    rates: list[Rate]
    caps: list[Cap]
    # what a settle needs (the plan is the reservation: ``types.Reservation``'s fields)
    units: list[str]  # each cap's unit: "usd" | "tok" | "step"
    budget_index: int | None
    tpm_key: str | None
    #: set by the memory store's check: each cap's counter entry, for its ``settle_plan``
    entries: list[list[int]] | None


class CheckResult(NamedTuple):
    """A store's answer, read by position (``code, index, used, alerted = result``): the
    memory store answers with a plain 4-tuple of this shape."""

    code: int
    index: int  # which rate / cap failed (0-based), -1 if none
    used: list[int]  # per cap: spent + reserved (+ previous-window share) before this request
    alerted: bool  # this request set a cap's alert flag (first crossing this period)


class SettleItem(NamedTuple):
    """One counter a settle moves. Stores and the failover read items by position (unpacking
    ``key, reserved, actual, expire_ms``), so the hot path (``planning.settle_items``) hands
    them plain 4-tuples: building a named tuple or a dataclass instance costs ~4 times a
    tuple's instructions, and a settle builds one per counter."""

    key: str
    reserved: int  # what the check reserved on this key
    actual: int  # what to add to spent
    expire_ms: int


def encode_member(res_id: str, caps: list[Cap]) -> str:
    """``id␞key␟amount␞key␟amount...``: the reservation names its own refunds."""
    if len(caps) == 1:  # the common budget-only plan
        c = caps[0]
        return f"{res_id}\x1e{c[0]}\x1f{c[2]}"
    return res_id + "".join([f"\x1e{c[0]}\x1f{c[2]}" for c in caps])


def decode_member(member: str) -> list[tuple[str, int]]:
    out = []
    for part in member.split(SEP_ITEM)[1:]:
        k, _, amt = part.rpartition(SEP_FIELD)
        out.append((k, int(amt)))
    return out


class Store(Protocol):
    """Both stores have this shape; async methods never block the event loop."""

    def check(self, plan: Plan) -> CheckResult: ...

    def settle(
        self,
        res_key: str,
        member: str,
        items: list[SettleItem],
        rate_adjust: list[Rate],
        now_ms: int,
        settle_id: str = "",
    ) -> list[int]:
        """Move ``reserved`` to ``spent`` (refund only if the reservation is still live; always
        add ``actual``); return each key's spent after. ``rate_adjust`` adds ``amount`` to rate
        windows (tpm: actual tokens minus estimate). A store whose calls can time out and still
        run (Redis) applies a non-empty ``settle_id`` at most once, so a settle can be replayed."""
        ...

    def read(
        self, keys: list[str], now_ms: int | None = None, res_key: str | None = None
    ) -> list[tuple[int, int]]:
        """``(spent, reserved)`` per cap key (0, 0 when absent); with ``res_key`` (a customer's
        reservation set) its expired reservations are refunded first, so a crashed caller's
        reservation is not shown as reserved after it expired."""
        ...

    def add_spent(self, items: list[SettleItem], now_ms: int) -> None:
        """Add spend without a reservation (re-sync after an outage)."""
        ...

    def clear_flag(self, key: str) -> bool: ...

    def close(self) -> None: ...

    async def acheck(self, plan: Plan) -> CheckResult: ...

    async def asettle(
        self,
        res_key: str,
        member: str,
        items: list[SettleItem],
        rate_adjust: list[Rate],
        now_ms: int,
        settle_id: str = "",
    ) -> list[int]: ...
