"""The values that cross the guard's boundary: a request in, a decision out, a settlement back."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from tailguard.guard.policy import Limits
from tailguard.guard.stores.base import Cap

Action = Literal["allow", "degrade", "deny", "kill"]
_ZERO = Decimal(0)


@dataclass(slots=True)
class Request:
    """One LLM call about to be made.

    ``estimated_cost_usd`` is the worst case (input estimate + max output, priced by the caller
    with ``tailguard.pricing``: the guard stays independent of price cards). It is reserved
    against every dollar limit before the call and replaced by the actual cost at ``settle``.
    ``tier`` / ``seats`` override the customers table for this call (rarely needed).
    """

    customer_id: str
    estimated_cost_usd: Decimal
    model: str | None = None
    input_tokens: int = 0
    max_output_tokens: int = 0
    user_id: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    tier: str | None = None
    seats: int | None = None


@dataclass(slots=True)
class Reservation:
    """What a check reserved; hand it back to ``settle`` or ``release`` exactly once.

    Reservations expire after ``reservation_ttl_s`` (the budget is refunded); a settle after
    that still counts the actual cost (money spent is never forgotten).
    """

    id: str
    customer_id: str
    res_key: str
    member: str
    #: the counters reserved on (the plan's caps: tuples of ``Cap``'s shape, shared, not copied)
    caps: list[Cap]
    #: each cap's unit: "usd" | "tok" | "step"
    units: list[str]
    budget_index: int | None
    tpm_key: str | None
    est_tokens: int
    limits: Limits
    request: Request
    model: str | None
    local: bool = False
    state: Literal["open", "settled", "released"] = "open"

    @property
    def items(self) -> list[tuple[str, int, str, int]]:
        """``(key, reserved amount, unit, expire_ms)`` per counter."""
        return [(c[0], c[2], u, c[4]) for c, u in zip(self.caps, self.units, strict=True)]


@dataclass(slots=True)
class Decision:
    """The guard's answer before a call.

    - ``allow``: call ``model`` (the requested one);
    - ``degrade``: call ``model`` instead (a cheaper one from ``degrade_to``);
    - ``deny``: do not call; ``rule`` says which limit, ``message`` is fit to show a user,
      ``retry_after`` is seconds until it may pass (``None``: not by waiting);
    - ``kill``: do not call; the session is terminated and stays terminated.

    ``graceful`` asks the gateway to answer a deny / kill with a well-formed completion that
    explains the cap (HTTP 200) instead of a 429 (policy key ``graceful``).
    """

    action: Action
    model: str | None
    rule: str | None = None
    message: str | None = None
    retry_after: int | None = None
    reservation: Reservation | None = None
    graceful: bool = False
    tier: str | None = None

    @property
    def allowed(self) -> bool:
        """True when the call may go ahead (``allow`` or ``degrade``)."""
        return self.action in ("allow", "degrade")


class Settlement:
    """After ``settle``: the budget's spend this period and any pay-as-you-go overage metered.

    ``spent`` is in the budget's ``unit``: dollars (``Decimal``, exact to the micro-dollar the
    guard counts in) or tokens. The store answers in integers; the ``Decimal`` is made when
    ``spent`` is read, not on every settle (most callers never read it).
    """

    __slots__ = ("_spent", "overage_usd", "unit")

    def __init__(
        self, spent_units: int = 0, overage_usd: Decimal = _ZERO, unit: str = "usd"
    ) -> None:
        #: the budget's spend in its counting unit: micro-dollars or tokens
        self._spent = spent_units
        self.overage_usd = overage_usd
        self.unit = unit

    @property
    def spent(self) -> Decimal:
        """The budget's spend after this call: dollars (``unit == "usd"``) or tokens."""
        n = self._spent
        return Decimal(n).scaleb(-6) if n and self.unit == "usd" else Decimal(n)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Settlement):
            return NotImplemented
        return (self.spent, self.overage_usd, self.unit) == (
            other.spent,
            other.overage_usd,
            other.unit,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return (
            f"Settlement(spent={self.spent!r}, overage_usd={self.overage_usd!r}, "
            f"unit={self.unit!r})"
        )
