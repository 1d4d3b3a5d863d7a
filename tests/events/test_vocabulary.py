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


def _guard_names() -> tuple[set[str], set[str]]:
    """(actions, rules) the guard's code writes: the strings in the first two arguments of
    every ``event(...)`` call (``rule or "soft_threshold"`` included), and every string
    assigned to a name ``rule`` or listed in ``cap_rules``."""
    actions: set[str] = set()
    rules: set[str] = set()
    for path in sorted((PACKAGE / "guard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "event":
                for into, arg in zip((actions, rules), node.args[:2], strict=False):
                    into.update(_strings(arg))
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                if names & {"rule", "cap_rules"} and node.value is not None:
                    rules.update(_strings(node.value))
    return actions, rules


def _strings(expr: ast.AST) -> set[str]:
    return {
        c.value for c in ast.walk(expr) if isinstance(c, ast.Constant) and isinstance(c.value, str)
    }


def test_the_guard_writes_only_vocabulary_names() -> None:
    actions, rules = _guard_names()
    assert {"deny", "degrade", "kill", "soft_threshold", "fail_open"} <= actions
    assert actions <= set(vocabulary.GUARD_ACTIONS)
    assert {"hard_limit", "soft_threshold", "session_velocity"} <= rules
    assert rules <= set(vocabulary.GUARD_RULES)


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
