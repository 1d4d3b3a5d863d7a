"""Policy loading: the worked example loads, and every invalid value is refused by key."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tailguard.guard import CustomerInfo, PolicyError, load_policy, parse_policy

EXAMPLE = Path(__file__).parents[2] / "examples" / "policy.toml"


def test_example_policy_loads_with_one_overage_pattern_per_tier():
    """examples/policy.toml, resolved by hand from the file: four plan tiers and a usage-based
    one, one overage pattern each (hard cap on free, degradation on pro, payg on the rest)."""
    p = load_policy(EXAMPLE)
    assert {n: t["overage"] for n, t in p.tiers.items()} == {
        "free": "hard_cap",
        "pro": "soft_cap_degrade",
        "team": "payg",
        "enterprise": "payg",
        "custom": "payg",
    }
    free = p.limits_for("someone-new")  # default tier
    assert (free.tier, free.budget_unit, free.hard_limit, free.soft_limit) == (
        "free",
        "tok",
        4_000_000,
        2_800_000,
    )  # 70% of 4M tokens
    acme = p.limits_for("acme")  # pro, with a $100 override (micro-dollars)
    assert (acme.tier, acme.hard_limit, acme.soft_limit) == ("pro", 100_000_000, 70_000_000)
    assert (acme.overage, acme.hard_limit_action) == ("soft_cap_degrade", "deny")
    assert acme.degrade_model("gpt-4o") == "gpt-4o-mini"
    # team pools: 25 seats x $17 = $425; 4 seats from the customers table: $68
    assert p.limits_for("initech").hard_limit == 425_000_000
    assert p.limits_for("x", info=CustomerInfo(tier="team", seats=4)).hard_limit == 68_000_000
    # enterprise: the contracted pool from the customers table, soft threshold 80%
    ent = p.limits_for("y", info=CustomerInfo(tier="enterprise", contracted_pool_usd=D("12000")))
    assert ent.hard_limit == 12_000_000_000 and ent.soft_limit == 9_600_000_000
    assert p.limits_for("globex").graceful is True
    assert p.settings.fail_mode == "fail_open"


def _p(tier: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"tiers": {"free": tier if tier is not None else {}}}
    d.update(top)
    return d


@pytest.mark.parametrize(
    "data,key,reason",
    [
        (_p({"overage": ["hard_cap", "payg"]}), "tiers.free.overage", "exactly one overage"),
        (_p({"overage": "cap"}), "tiers.free.overage", "hard_cap | soft_cap_degrade | payg"),
        (_p({"period": "week"}), "tiers.free.period", "minute | hour | day | month"),
        (_p({"soft_threshold": 1.5}), "tiers.free.soft_threshold", "(0, 1]"),
        (_p({"soft_threshold": 0}), "tiers.free.soft_threshold", "> 0"),
        (_p({"hard_limit_usd": -5}), "tiers.free.hard_limit_usd", "> 0"),
        (_p({"hard_limit_usd": "lots"}), "tiers.free.hard_limit_usd", "must be a number"),
        (
            _p({"hard_limit_usd": 5, "hard_limit_tokens": 5}),
            "tiers.free.hard_limit_tokens",
            "not both",
        ),
        (_p({"rpm": 1.5}), "tiers.free.rpm", "whole number"),
        (_p({"rpm": True}), "tiers.free.rpm", "whole number"),
        (_p({"rmp": 5}), "tiers.free.rmp", "unknown key"),
        (_p({"overage": "soft_cap_degrade"}), "tiers.free.degrade_to", "needs a degrade_to"),
        (
            _p({"overage": "soft_cap_degrade", "degrade_to": {"a": "b", "b": "a"}}),
            "tiers.free.degrade_to",
            "loops back",
        ),
        (
            _p({"hard_limit_action": "degrade"}),
            "tiers.free.hard_limit_action",
            "only applies to soft_cap_degrade",
        ),
        (_p({"graceful": "yes"}), "tiers.free.graceful", "true or false"),
        (
            _p({"hard_limit_tokens": 10, "pool_per_seat_usd": 3}),
            "tiers.free.pool_per_seat_usd",
            "counts dollars",
        ),
        (_p(guard={"fail_mode": "open"}), "guard.fail_mode", "fail_open | fail_closed"),
        (_p(guard={"default_tier": "gold"}), "guard.default_tier", "unknown tier"),
        (_p(guard={"webhook_url": "ftp://x"}), "guard.webhook_url", "http(s) URL"),
        (_p(guard={"reservation_ttl_s": 0}), "guard.reservation_ttl_s", "> 0"),
        (_p(customers={"acme": {"tier": "gold"}}), "customers.acme.tier", "unknown tier"),
        (
            _p({"overage": "hard_cap"}, customers={"acme": {"tier": "free", "overage": "payg"}}),
            "customers.acme.overage",
            "one overage pattern per tier",
        ),
        (_p(customers={"acme": {"seats": -1}}), "customers.acme.seats", ">= 0"),
        ({"tiers": {}}, "tiers", "at least one"),
        ({"tiers": {"pro": {}}}, "guard.default_tier", "no 'free' tier"),
        (_p(limits={}), "limits", "unknown table"),
    ],
)
def test_invalid_policies_are_refused_by_key(data, key, reason):
    with pytest.raises(PolicyError) as ei:
        parse_policy(data, source="p.toml")
    assert ei.value.key == key
    assert reason in ei.value.reason
    assert str(ei.value).startswith(f"p.toml: {key}: ")


def test_bad_toml_and_missing_file(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[tiers.free\n")
    with pytest.raises(PolicyError, match="invalid TOML"):
        load_policy(f)
    with pytest.raises(PolicyError, match="no such file"):
        load_policy(tmp_path / "nope.toml")


def test_money_is_exact():
    p = parse_policy(_p({"hard_limit_usd": 5.1, "task_max_cost_usd": 0.3}))
    lim = p.limits_for("c")
    assert (lim.hard_limit, lim.task_max_cost) == (5_100_000, 300_000)  # no float noise
