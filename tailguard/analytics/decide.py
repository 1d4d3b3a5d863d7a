"""The per-customer economics essay's "when to give up on a customer", as arithmetic a reader can
check.

For one customer over its last quarter: the three calendar months ending with ``as_of``'s
month, clipped to the ledger's days, where ``as_of`` defaults to **that customer's** last event
(``tailguard.analytics.period.customer_quarter``: never the ledger's last event, so newer traffic
from other customers cannot move the window onto months this one has no events in), or an
explicit ``window``. A customer with no events in the window is refused (``NoDataError``): no
data is not a cost of zero, and "keep, it costs nothing" would be a verdict about nothing. A
customer without a customers-table row has no known price and is refused too.

1. **Cost to serve vs price paid**, per month: ``months`` = the window's months of MRR
   (``Window.months()``: 1 for a calendar month, else days / 30.436875, the rule of every
   report), ``monthly_cost`` = cost / months, ``monthly_price`` (below), ``monthly_margin`` =
   price − cost. The price paid includes the pay-as-you-go overage billed in the window
   (``overage_usd``: the guard's ``overage`` events, ``margins.overage_billed``):
   ``price_paid_usd`` = MRR × months + overage, ``monthly_price`` = that / months. The window's
   own ``revenue_usd``, ``cost_pct_of_mrr`` and ``gross_margin_usd`` come from
   ``margins.billed_figures``: ``customers.margin_figures`` (the formula of every report) with
   the overage added to the revenue. **Invoice-reconciled cost**: where ``tailguard reconcile
   --allocate`` allocated the invoice's unattributed remainder in the window's months, the cost
   to serve is the measured cost plus this customer's allocation (``measured_cost_usd`` +
   ``allocated_usd``), so every margin figure follows the invoice; ``cost_basis`` is
   ``invoice-reconciled``, ``partly invoice-reconciled`` (``reconciled_months`` names the
   months) or ``measured`` (no allocation), and the arithmetic says which. ``last_event`` and
   ``quiet_days`` (days from it to the ledger's last event) tell a customer who went quiet from
   one still active: it is judged on its last active quarter.
2. **The levers that apply**, from the diagnosis (``tailguard.analytics.diagnose``: the shapes of
   the customer's usage and their levers, the per-customer economics essay and the cost-allocation
   guide). Each lever has an ``uplift`` (share of cost it removes when it works), a ``probability``
   that it works and the ``hours`` of engineering it takes. Those are **assumptions**, not
   measurements: the defaults below are this module's estimates, meant to be replaced in
   ``[decide.levers.NAME]`` of the config file. Levers compose multiplicatively (each removes its
   share of what is left): ``after = cost × Π(1 − uplift × probability)``, in the diagnosis' order.
   Engineering is amortised over the expected lifetime: ``hours × hourly_rate / lifetime_months``
   per month, and a lever whose expected monthly saving does not exceed that is not applied (the
   essay's "alternative use of the engineering hours"). Levers are in three groups: ``fix`` (product
   changes: keep serving, cheaper), ``cap`` (limits: cheaper, at some risk to the relationship) and
   ``price`` (repricing / usage pricing).
3. **Counterfactual lifetime value**: monthly margin × ``lifetime_months`` (default 24), as is,
   after the fix levers, and after fix + cap levers.
4. **The recommendation**, first that holds:
   - ``keep``: the margin is not negative, or the fix levers make it so;
   - ``reprice``: the price increase that closes the remaining gap is at most
     ``max_price_increase_pct`` (default 50%) of MRR;
   - ``cap``: fix + cap levers close the gap (a free customer, who pays nothing, is always
     ``cap``: its tier cap bounds it, there is no price to change);
   - ``offboard``: nothing bridges it — "not pretending the average looks fine forever" (the
     per-customer economics essay). Customers listed in ``keep_anyway`` (a logo, a learning signal,
     a strategic relationship: the reasons the per-customer economics essay accepts) are ``keep``
     with that reason shown.

Every step is returned as a line of arithmetic (``arithmetic``), its amounts shown by the one
money rule (``tailguard.money``: cents from a dollar up, four places below) for a person to
read. The figures themselves (margins, savings, lifetime values, the price increase) are exact
Decimals: sums exact, quotients at Decimal's 28 significant digits (the default context,
half-even), so JSON and CSV carry every digit; the probabilities and uplifts are Decimals from
the config.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tailguard.analytics.context import QueryContext, using
from tailguard.analytics.margins import billed_figures, overage_billed
from tailguard.analytics.period import Window, customer_quarter, event_span, require_events
from tailguard.analytics.renewal import allocations, cost_basis
from tailguard.errors import ConfigError, NoDataError

#: lever -> (group, uplift, probability, engineering hours): this module's estimates
LEVER_DEFAULTS: dict[str, tuple[str, str, str, int]] = {
    "fresh_task_ux": ("fix", "0.20", "0.5", 40),
    "context_truncation": ("fix", "0.30", "0.7", 24),
    "prompt_caching": ("fix", "0.25", "0.8", 16),
    "tool_fix": ("fix", "0.30", "0.5", 40),
    "token_aware_ui": ("fix", "0.15", "0.5", 24),
    "prompt_optimization": ("fix", "0.15", "0.7", 16),
    "retrieval_tool_fix": ("fix", "0.40", "0.5", 40),
    "cache_aware_ux": ("fix", "0.15", "0.5", 24),
    "feature_cache": ("fix", "0.25", "0.6", 24),
    "model_cascade": ("fix", "0.40", "0.7", 24),
    "step_ceiling": ("cap", "0.30", "0.9", 8),
    "prompt_ceiling": ("cap", "0.25", "0.9", 4),
    "retry_budget": ("cap", "0.30", "0.9", 4),
    "tenant_cap": ("cap", "0.40", "0.9", 4),
    "rate_limit": ("cap", "0.20", "0.9", 4),
    "reasoning_budget": ("cap", "0.25", "0.9", 4),
    "usage_pricing": ("price", "0", "0", 16),
    "repricing": ("price", "0", "0", 8),
}


@dataclass(frozen=True)
class LeverCost:
    group: str
    uplift: Decimal
    probability: Decimal
    hours: Decimal


@dataclass(frozen=True)
class DecideConfig:
    """``[decide]`` in the config file; every figure is an assumption to be replaced."""

    lifetime_months: Decimal = Decimal(24)
    hourly_rate_usd: Decimal = Decimal(150)
    max_price_increase_pct: Decimal = Decimal(50)
    keep_anyway: dict[str, str] = field(default_factory=dict)
    levers: dict[str, LeverCost] = field(
        default_factory=lambda: {
            k: LeverCost(g, Decimal(u), Decimal(p), Decimal(h))
            for k, (g, u, p, h) in LEVER_DEFAULTS.items()
        }
    )


def load_config(path: str | None = None) -> DecideConfig:
    """``[decide]``: lifetime_months, hourly_rate_usd, max_price_increase_pct, keep_anyway
    (customer id -> reason), and ``[decide.levers.NAME]`` with uplift, probability, hours."""
    from tailguard.config import check_table, section

    keys = ("lifetime_months", "hourly_rate_usd", "max_price_increase_pct", "keep_anyway", "levers")
    sec = section("decide", keys, path)
    base = DecideConfig()
    levers = dict(base.levers)
    for name, v in check_table("[decide.levers]", sec.get("levers") or {}, base.levers).items():
        v = check_table(f"[decide.levers.{name}]", v, ("group", "uplift", "probability", "hours"))
        old = levers[name]
        try:
            levers[name] = LeverCost(
                str(v.get("group", old.group)),
                Decimal(str(v.get("uplift", old.uplift))),
                Decimal(str(v.get("probability", old.probability))),
                Decimal(str(v.get("hours", old.hours))),
            )
        except (ArithmeticError, AttributeError) as exc:
            raise ConfigError(f"[decide.levers.{name}]: {exc}") from None
    try:
        return DecideConfig(
            lifetime_months=Decimal(str(sec.get("lifetime_months", base.lifetime_months))),
            hourly_rate_usd=Decimal(str(sec.get("hourly_rate_usd", base.hourly_rate_usd))),
            max_price_increase_pct=Decimal(
                str(sec.get("max_price_increase_pct", base.max_price_increase_pct))
            ),
            keep_anyway={str(k): str(v) for k, v in (sec.get("keep_anyway") or {}).items()},
            levers=levers,
        )
    except ArithmeticError as exc:
        raise ConfigError(f"[decide]: {exc}") from None


def _months_of(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first days of the calendar months that ``[first, last]`` touches."""
    out, m = [], first.replace(day=1)
    while m <= last:
        out.append(m)
        m = (m + dt.timedelta(days=32)).replace(day=1)
    return out


def _c(v: Decimal) -> str:
    """``v`` as the arithmetic lines show it, by the one money rule (``tailguard.money``: cents
    from a dollar up, four places below, half-even): display only, never the figures."""
    from tailguard.money import format_usd

    return format_usd(v, symbol=False)


def plan(
    mc: Decimal,
    mp: Decimal,
    keys: list[str],
    cfg: DecideConfig,
    *,
    customer: str | None = None,
) -> dict[str, Any]:
    """The decision arithmetic for a monthly cost ``mc`` and price ``mp`` and the ranked levers
    ``keys`` (module docstring, steps 2-4). Pure: tested by hand without a ledger."""
    margin = mp - mc
    steps = [f"monthly margin = price {_c(mp)} - cost {_c(mc)} = {_c(margin)}"]
    levers = []
    remaining = {"fix": mc, "cap": mc}
    hours = {"fix": Decimal(0), "cap": Decimal(0), "price": Decimal(0)}
    for key in keys:
        lc = cfg.levers.get(key)
        if lc is None:
            continue
        pool = remaining["fix"] if lc.group == "fix" else remaining["cap"]
        saving = pool * lc.uplift * lc.probability
        eng = lc.hours * cfg.hourly_rate_usd / cfg.lifetime_months
        # a lever whose expected saving does not pay for its engineering is not applied
        applied = lc.group != "price" and saving > eng
        if applied:
            hours[lc.group] += lc.hours
            if lc.group == "fix":
                remaining["fix"] -= saving
                remaining["cap"] -= remaining["cap"] * lc.uplift * lc.probability
            else:
                remaining["cap"] -= saving
        levers.append(
            {
                "lever": key,
                "group": lc.group,
                "uplift": lc.uplift,
                "probability": lc.probability,
                "expected_monthly_saving_usd": saving,
                "hours": lc.hours,
                "engineering_per_month_usd": eng,
                "applied": applied,
            }
        )
        if lc.group != "price":
            steps.append(
                f"{key} ({lc.group}): saving {_c(pool)} × {lc.uplift} × {lc.probability} = "
                f"{_c(saving)} vs engineering {lc.hours} h × {cfg.hourly_rate_usd} / "
                f"{cfg.lifetime_months} = {_c(eng)} a month: "
                + ("applied" if applied else "not worth it")
            )
    life = cfg.lifetime_months
    eng_fix = hours["fix"] * cfg.hourly_rate_usd / life
    eng_cap = (hours["fix"] + hours["cap"]) * cfg.hourly_rate_usd / life
    margin_fix = mp - remaining["fix"] - eng_fix
    margin_cap = mp - remaining["cap"] - eng_cap
    steps.append(
        f"after fix levers: {_c(mp)} - {_c(remaining['fix'])} - engineering "
        f"{hours['fix']} h × {cfg.hourly_rate_usd} / {life} = {_c(margin_fix)} a month"
    )
    steps.append(
        f"after fix + cap levers: {_c(mp)} - {_c(remaining['cap'])} - engineering "
        f"{hours['fix'] + hours['cap']} h × {cfg.hourly_rate_usd} / {life} = {_c(margin_cap)}"
    )
    need_pct = (-margin_fix / mp * 100) if mp > 0 and margin_fix < 0 else None
    if need_pct is not None:
        steps.append(
            f"price increase to close the gap: {_c(-margin_fix)} / {_c(mp)} = {_c(need_pct)}% "
            f"(max {cfg.max_price_increase_pct}%)"
        )
    if customer in cfg.keep_anyway:
        rec, why = "keep", f"keep_anyway: {cfg.keep_anyway[customer]}"
    elif margin >= 0:
        rec, why = "keep", "cost to serve is within the price paid"
    elif margin_fix >= 0:
        rec, why = "keep", "the fix levers close the gap"
    elif mp == 0:
        rec, why = "cap", "pays nothing: bound it with its tier cap"
    elif need_pct is not None and need_pct <= cfg.max_price_increase_pct:
        rec, why = "reprice", f"a {_c(need_pct)}% price increase closes the gap"
    elif margin_cap >= 0:
        rec, why = "cap", "fix + cap levers close the gap"
    else:
        rec, why = "offboard", "no lever or price within bounds closes the gap"
    steps.append(f"recommendation: {rec} ({why})")
    life = cfg.lifetime_months
    return {
        "monthly_margin_usd": margin,
        "shapes": [],
        "levers": levers,
        "monthly_margin_after_fix_usd": margin_fix,
        "monthly_margin_after_cap_usd": margin_cap,
        "price_increase_needed_pct": need_pct,
        "lifetime_months": life,
        "lifetime_value_usd": {
            "as_is": margin * life,
            "after_fix": margin_fix * life,
            "after_fix_and_cap": margin_cap * life,
        },
        "engineering_hours": hours,
        "recommendation": rec,
        "reason": why,
        "arithmetic": steps,
    }


def decide(
    ledger: Any,
    customer: str,
    *,
    window: Window | None = None,
    as_of: dt.date | None = None,
    config: DecideConfig | None = None,
) -> dict[str, Any]:
    """Keep, reprice or let go of ``customer`` (``_decide`` has the fields). ``ledger``: a
    ``QueryContext``, a ``Ledger`` or its directory, or an open connection."""
    with using(ledger) as ctx:
        return _decide(ctx, customer, as_of=as_of, window=window, config=config)


def _decide(
    con: QueryContext,
    customer: str,
    *,
    as_of: dt.date | None = None,
    window: Window | None = None,
    config: DecideConfig | None = None,
) -> dict[str, Any]:
    """The decision for ``customer`` with its arithmetic (module docstring).

    ``window`` (bounded) replaces the default quarter; ``as_of`` moves the default quarter.
    ``NoDataError`` when the customer has no events in the window or no customers-table row.
    """
    from tailguard.analytics.diagnose import diagnose

    cfg = config or DecideConfig()
    if window is not None:
        if window.start is None or window.end is None:
            raise ConfigError("decide needs a bounded window (both a first and a last day)")
        win = window
        require_events(con, win, customer=customer)
    else:
        win = customer_quarter(con, customer, as_of)
    dim = con.execute(
        "SELECT tier, segment, mrr_usd FROM customers WHERE customer_id = ?", [customer]
    ).fetchall()
    if not dim or dim[0][2] is None:
        raise NoDataError(
            f"{customer!r} has no MRR in the customers table: the price paid is unknown, "
            "not zero (import the customers table)",
            window=(win.first_day, win.last_day),
            customer=customer,
        )
    tier, segment, mrr = dim[0]
    # the diagnosis aggregates every customer over the window (it needs the medians) and
    # returns this one's cost and levers
    (diag,) = diagnose(con, win, customer=customer)
    measured = diag["cost_usd"]
    months = win.months()
    assert months is not None  # a bounded window
    assert win.first_day is not None and win.last_day is not None
    # the invoice's share of this customer (reconcile --allocate), where the months were allocated
    alloc = allocations(con, customer, win.first_day, win.last_day)
    allocated = sum(alloc.values(), Decimal(0))
    n_months = len(_months_of(win.first_day, win.last_day))
    basis = cost_basis(len(alloc), n_months)
    reconciled = [m.strftime("%Y-%m") for m in sorted(alloc)]
    cost = measured + allocated
    mc = cost / months
    # the price paid: the plan fee and the payg overage billed in the window (margins)
    overage = overage_billed(con, win).get(customer, Decimal(0))
    paid = mrr * months + overage
    mp = paid / months if overage else mrr
    keys = [lv["lever"] for lv in diag["levers"]]
    steps = [f"window {win.label()}: {months:.4f} months"]
    if basis != "measured":
        steps.append(
            f"cost to serve ({basis}, months {', '.join(reconciled)}): measured "
            f"{_c(measured)} + allocated {_c(allocated)} (the invoice's unattributed remainder, "
            f"reconcile --allocate) = {_c(cost)}"
        )
    steps.append(f"monthly cost {_c(cost)} / {months:.4f} = {_c(mc)}")
    if overage:
        steps.append(
            f"price paid: MRR {_c(mrr)} × {months:.4f} + pay-as-you-go overage billed "
            f"{_c(overage)} = {_c(paid)}; monthly price {_c(paid)} / {months:.4f} = {_c(mp)}"
        )
    # a customer who went quiet is judged on its last active quarter: say how long ago that was
    _, last_event = event_span(con, customer=customer)
    _, ledger_last = event_span(con)
    assert last_event is not None and ledger_last is not None  # the window held its events
    quiet_days = (ledger_last.astimezone(dt.UTC).date() - last_event.astimezone(dt.UTC).date()).days
    if quiet_days > 0:
        steps.append(
            f"no events since {last_event.astimezone(dt.UTC):%Y-%m-%d}: quiet for {quiet_days} "
            f"days before the ledger's last event ({ledger_last.astimezone(dt.UTC):%Y-%m-%d})"
        )
    res = plan(mc, mp, keys, cfg, customer=customer)
    return {
        "customer_id": customer,
        "tier": tier,
        "segment": segment,
        "window": win.stated(),
        "last_event": last_event,
        "quiet_days": quiet_days,
        "months": months,
        "cost_to_serve_usd": cost,
        "cost_basis": basis,
        "measured_cost_usd": measured,
        "allocated_usd": allocated,
        "reconciled_months": reconciled,
        "price_paid_usd": paid,
        **billed_figures(cost, mrr, months, overage),
        "monthly_cost_usd": mc,
        "monthly_price_usd": mp,
        **res,
        "shapes": diag["shapes"],
        "arithmetic": steps + res["arithmetic"],
    }
