"""Commands: guard status, guard check-policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tailguard.cli.app import app
from tailguard.cli.options import LedgerOpt, ledger_path
from tailguard.cli.output import JsonOpt, choice, emit, output_options, print_json
from tailguard.errors import ConfigError

guard_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[env TAILGUARD_LEDGER]" is not Rich markup
    help="Per-customer budgets, caps and ceilings (the guard).",
    no_args_is_help=True,
)
app.add_typer(guard_app, name="guard")

PolicyOpt = Annotated[
    str | None, typer.Option("--policy", help="Guard policy TOML [env TAILGUARD_POLICY].")
]
RedisOpt = Annotated[
    str | None,
    typer.Option("--redis-url", help="Shared guard state in Redis [env TAILGUARD_REDIS_URL]."),
]
StateOpt = Annotated[
    str | None,
    typer.Option("--state", help="In-process guard state directory [default LEDGER/guard]."),
]


def _policy(flag: str | None) -> Any:
    from tailguard.config import setting
    from tailguard.guard import load_policy

    path = setting("policy", flag)
    if not path:
        raise ConfigError("no guard policy: pass --policy FILE or set TAILGUARD_POLICY")
    return load_policy(path)


@guard_app.command("status")
@output_options
def status(
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    policy: PolicyOpt = None,
    redis_url: RedisOpt = None,
    state: StateOpt = None,
    ledger: LedgerOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A customer's spend this period, limits, headroom and projected cap-hit date.

    The projection assumes the pace so far this period continues.

    Example: tailguard guard status acme --policy policy.toml --redis-url redis://localhost:6379
    """
    from tailguard.config import setting
    from tailguard.customers import customers_from_ledger
    from tailguard.guard import Guard
    from tailguard.guard.stores.memory import MemoryStore

    pol = _policy(policy)
    led = ledger_path(ledger)
    url = setting("redis_url", redis_url)
    store: Any
    if url:
        from tailguard.guard.stores.redis import RedisStore, StoreUnavailableError

        store = RedisStore(str(url))
    else:
        store = MemoryStore(Path(state) if state else Path(led) / "guard", readonly=True)
    g = Guard(pol, store, customers=customers_from_ledger(led))
    try:
        st = g.status(customer)
    except Exception as exc:
        if url and isinstance(exc, StoreUnavailableError):
            raise ConfigError(f"cannot read guard state: {exc}") from exc
        raise
    finally:
        store.close()
    if json_:
        print_json(st)
        return
    rows = [{"field": k, "value": v} for k, v in st.items()]
    emit(
        rows,
        json_=False,
        csv_=choice().csv,
        columns=["field", "value"],
        title=f"guard status: {customer}",
    )


@guard_app.command("check-policy")
def check_policy(
    file: Annotated[str, typer.Argument(help="The policy TOML file.")],
    json_: JsonOpt = False,
) -> None:
    """Validate a policy file; a bad key is named with the reason (exit 1).

    Example: tailguard guard check-policy examples/policy.toml
    """
    from tailguard.guard import load_policy
    from tailguard.guard.units import from_micro
    from tailguard.money import format_usd

    pol = load_policy(file)
    rows = []
    for name in pol.tiers:
        lim = pol.limits_for(f"\x00tier:{name}", tier=name)
        rows.append(
            {
                "tier": name,
                "period": lim.period,
                "overage": lim.overage,
                "unit": lim.budget_unit,
                "hard_limit": lim.hard_limit
                if lim.budget_unit == "tok" or lim.hard_limit is None
                else format_usd(from_micro(lim.hard_limit)),
                "soft_threshold": lim.soft_threshold,
                "rpm": lim.rpm,
            }
        )
    if json_:
        print_json({"ok": True, "file": file, "tiers": rows, "customers": len(pol.customers)})
        return
    emit(rows, json_=False, csv_=False, title=f"{file}: OK ({len(pol.customers)} customers)")
