"""A deny names the limit that failed, for every mix of limits a plan can carry.

Planning shares one list of rule names per plan shape (which rate windows, which caps) among
all the plans of that shape; the store answers with an index into them. These tests make one
limit tight and every other one loose, for each mix, so a list out of line with its windows or
caps names the wrong rule. Both stores.
"""

from __future__ import annotations

import itertools
from decimal import Decimal as D

from tailguard.guard import Request

RATE_RULES = ("rpm", "user_rpm", "tpm")
TIGHT = {"rpm": 1, "user_rpm": 1, "tpm": 1000}
LOOSE = {"rpm": 10**6, "user_rpm": 10**6, "tpm": 10**9}


def test_a_rate_deny_names_its_window(make_guard):
    """Each non-empty set of {rpm, user_rpm, tpm} on the tier, one of them tight (one request
    a minute, or 1,000 tokens a minute against two calls of 300 + 300), the rest loose. The
    second call is denied by the tight one, with and without a user; except ``user_rpm`` for
    calls without a user, which have no user window: both are allowed."""
    n = 0
    for k in (1, 2, 3):
        for present in itertools.combinations(RATE_RULES, k):
            for tight in present:
                for user in ("u1", None):
                    n += 1
                    tier = {r: (TIGHT if r == tight else LOOSE)[r] for r in present}
                    g = make_guard({"overage": "payg", **tier})
                    req = Request(
                        f"c{n}", D("0.01"), input_tokens=300, max_output_tokens=300, user_id=user
                    )
                    assert g.check(req).allowed, (present, tight, user)
                    second = g.check(req)
                    if tight == "user_rpm" and user is None:
                        assert second.allowed, present
                    else:
                        assert (second.action, second.rule) == ("deny", tight), (present, user)
    assert n == 24  # 12 (set, tight limit) pairs, with and without a user


CAP_RULES = ("session_velocity", "task_max_llm_calls", "task_max_cost_usd")


def test_a_cap_deny_names_its_limit(make_guard):
    """Each set of {session velocity, task steps, task dollars} beside the budget, one of the
    four tight, the rest loose. Calls of $0.01 in one session and one task; tight means the
    second call passes it: a $0.015 budget, $0.015 an hour for the session (a kill), one call
    per task, $0.015 per task. The second call names the tight limit."""
    loose = {
        "hard_limit_usd": 1000,
        "session_max_usd_per_hour": 1000,
        "task_max_llm_calls": 10**6,
        "task_max_cost_usd": 1000,
    }
    tight_of = {
        "hard_limit": ("hard_limit_usd", 0.015),
        "session_velocity": ("session_max_usd_per_hour", 0.015),
        "task_max_llm_calls": ("task_max_llm_calls", 1),
        "task_max_cost_usd": ("task_max_cost_usd", 0.015),
    }
    key_of = {rule: key for rule, (key, _v) in tight_of.items()}
    n = 0
    for k in (0, 1, 2, 3):
        for present in itertools.combinations(CAP_RULES, k):
            for tight in ("hard_limit", *present):
                n += 1
                tier = {"overage": "hard_cap", "hard_limit_usd": loose["hard_limit_usd"]}
                for rule in present:
                    tier[key_of[rule]] = loose[key_of[rule]]
                key, value = tight_of[tight]
                tier[key] = value
                g = make_guard(tier)
                req = Request(f"c{n}", D("0.01"), session_id="s1", task_id="t1")
                first = g.check(req)
                assert first.allowed, (present, tight)
                g.settle(first.reservation, D("0.01"))
                second = g.check(Request(f"c{n}", D("0.01"), session_id="s1", task_id="t1"))
                action = "kill" if tight == "session_velocity" else "deny"
                assert (second.action, second.rule) == (action, tight), present
    assert n == 20  # 8 sets of caps, each with the budget or one of its own caps tight


def test_settle_reports_the_budget_whatever_caps_come_first(make_guard):
    """``Settlement.spent`` is the budget's spend, also when a session velocity cap sits before
    it in the plan (and task caps after it): $0.30 settled in session a, then $0.20 in session
    b, is $0.50 for the budget (session b's own hour holds $0.20)."""
    for k, task in enumerate(({}, {"task_max_llm_calls": 10}, {"task_max_cost_usd": 10})):
        for velocity in ({}, {"session_max_usd_per_hour": 100}):
            g = make_guard({"overage": "payg", **velocity, **task})
            cust = f"c{k}-{len(velocity)}"
            a = g.check(Request(cust, D("0.40"), session_id="a", task_id="t"))
            assert g.settle(a.reservation, D("0.30")).spent == D("0.30")
            b = g.check(Request(cust, D("0.40"), session_id="b", task_id="t"))
            assert g.settle(b.reservation, D("0.20")).spent == D("0.50"), (velocity, task)
