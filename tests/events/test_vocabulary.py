"""One vocabulary: every closed set of names is defined in ``tailguard.vocabulary`` and the rest
of the package uses that definition (issue 15 item 1)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import tailguard
from tailguard import customers, vocabulary
from tailguard.analytics import diagnose, outcomes
from tailguard.events import schema, sql
from tailguard.guard import policy
from tailguard.simulate import catalog, population

PACKAGE = Path(tailguard.__file__).parent
REPO = PACKAGE.parent


def test_each_set_is_defined_once() -> None:
    assert schema.KINDS is vocabulary.KINDS
    assert schema.Workload is vocabulary.Workload and schema.Status is vocabulary.Status
    assert schema.Outcome is vocabulary.Outcome and schema.GuardAction is vocabulary.GuardAction
    assert sql.ENUMS["status"] is vocabulary.STATUSES  # was ("ok", "error"): Parquet refused
    assert sql.ENUMS["outcome"] is vocabulary.OUTCOMES
    assert customers.TIERS is vocabulary.TIERS and customers.SEGMENTS is vocabulary.SEGMENTS
    assert policy.OVERAGES is vocabulary.OVERAGES
    assert diagnose.SHAPES is vocabulary.SHAPES
    assert outcomes.OUTCOMES is vocabulary.OUTCOMES
    assert population.TIERS is vocabulary.TIERS and population.SHAPES is vocabulary.SHAPES
    assert catalog.TIER_ORDER is vocabulary.TIERS and catalog.OUTCOMES is vocabulary.OUTCOMES


def test_no_module_spells_a_set_again() -> None:
    """No module but the vocabulary assigns a tuple literal equal to one of its sets."""
    sets = {
        v
        for k, v in vars(vocabulary).items()
        if k.isupper() and isinstance(v, tuple) and len(v) > 2
    }
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "vocabulary.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            value = getattr(node, "value", None)
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(value, ast.Tuple):
                try:
                    literal = ast.literal_eval(value)
                    if literal not in sets:
                        continue
                except (ValueError, TypeError):  # not a literal, or holds a list
                    continue
                else:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []


def test_every_tier_has_a_default_overage() -> None:
    assert set(vocabulary.DEFAULT_OVERAGE) == set(vocabulary.TIERS)
    assert set(vocabulary.DEFAULT_OVERAGE.values()) <= set(vocabulary.OVERAGES)


#: argument positions that hold a rule name: ``event(action, rule, ...)``,
#: ``deny(req, lim, now_ms, rule, ...)``, ``Decision(action, model, rule, ...)``
_RULE_ARG = {"event": 1, "deny": 3, "Decision": 2}
#: names (variables and attributes) that hold a rule name or a list of them
_RULE_NAMES = {"rule", "cap_rules", "rate_rules"}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _guard_names() -> tuple[set[str], set[str]]:
    """(actions, rules) the guard's and the gateway's code writes, read from the source: the
    string constants in the rule argument of every ``event(...)``, ``deny(...)`` and
    ``Decision(...)`` call (``rule or "soft_threshold"`` included) and in the action argument
    of ``event(...)``; every string assigned to ``rule`` (a tuple assignment element by
    element), to ``cap_rules`` or ``rate_rules``, or appended or inserted into those lists.
    Rule names passed in variables are caught where the variable is given its value."""
    actions: set[str] = set()
    rules: set[str] = set()
    for path in sorted([*(PACKAGE / "guard").rglob("*.py"), *(PACKAGE / "gateway").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                called = _name(node.func)
                if called == "event" and node.args:
                    actions.update(_strings(node.args[0]))
                if called in _RULE_ARG and len(node.args) > _RULE_ARG[called]:
                    rules.update(_strings(node.args[_RULE_ARG[called]]))
                if (
                    called in {"append", "insert"}
                    and isinstance(node.func, ast.Attribute)
                    and _name(node.func.value) in _RULE_NAMES
                    and node.args
                ):
                    rules.update(_strings(node.args[-1]))
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if _name(t) in _RULE_NAMES:
                        rules.update(_strings(node.value))
                    elif isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for el, val in zip(t.elts, node.value.elts, strict=False):
                            if _name(el) in _RULE_NAMES:
                                rules.update(_strings(val))
    return actions, rules


def _strings(expr: ast.AST) -> set[str]:
    return {
        c.value for c in ast.walk(expr) if isinstance(c, ast.Constant) and isinstance(c.value, str)
    }


#: every rule the guard writes, listed by hand from its code (planning, deciding, engine,
#: failover): the scan must find each of them, or it has gone blind to a way of passing one
WRITTEN_RULES = {
    "soft_threshold",
    "hard_limit",
    "payg",
    "session_velocity",
    "session_killed",
    "store_unavailable",
    "rpm",
    "user_rpm",
    "tpm",
    "max_input_tokens",
    "task_max_llm_calls",
    "task_max_cost_usd",
    "invalid_request",
    "guard_unavailable",
    "guard_error",
}


def test_the_guard_writes_only_vocabulary_names() -> None:
    actions, rules = _guard_names()
    assert {"deny", "degrade", "kill", "soft_threshold", "fail_open", "overage"} <= actions
    assert actions <= set(vocabulary.GUARD_ACTIONS)
    assert rules >= WRITTEN_RULES  # the scan sees the rules passed in variables too
    assert rules <= set(vocabulary.GUARD_RULES)
    # and the vocabulary holds no rule nothing writes
    assert set(vocabulary.GUARD_RULES) == rules


def test_the_simulator_writes_what_the_guard_writes() -> None:
    assert set(catalog.GUARD_ACTIONS) <= set(vocabulary.GUARD_ACTIONS)
    assert set(catalog.GUARD_RULES) <= set(vocabulary.GUARD_RULES)
    assert set(population.WORKLOADS) <= set(vocabulary.WORKLOADS)


def test_example_policy_has_the_default_overage_of_each_tier() -> None:
    tiers = tomllib.loads((REPO / "examples" / "policy.toml").read_text())["tiers"]
    assert set(tiers) <= set(vocabulary.TIERS)
    assert {t: v["overage"] for t, v in tiers.items()} == {
        t: vocabulary.DEFAULT_OVERAGE[t] for t in tiers
    }
