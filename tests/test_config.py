"""One way to read a ``[section]``: unknown keys are refused with the key named.

Before, ``[decide] lifetime_month = 6`` (a typo) was ignored and decisions were judged over the
default 24 months without a word.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.analytics import decide, workload
from tailguard.config import section
from tailguard.errors import ConfigError


def _cfg(tmp_path: Path, text: str) -> str:
    p = tmp_path / "tailguard.toml"
    p.write_text(text)
    return str(p)


def test_decide_refuses_a_misspelt_key(tmp_path: Path) -> None:
    path = _cfg(tmp_path, "[decide]\nlifetime_month = 6\n")
    with pytest.raises(ConfigError, match="lifetime_month") as e:
        decide.load_config(path)
    assert "lifetime_months" in str(e.value)  # the allowed keys are named too


def test_decide_refuses_an_unknown_lever_and_lever_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tool_fixx"):
        decide.load_config(_cfg(tmp_path, "[decide.levers.tool_fixx]\nuplift = 0.5\n"))
    with pytest.raises(ConfigError, match=r"\[decide\.levers\.tool_fix\].*uplfit"):
        decide.load_config(_cfg(tmp_path, "[decide.levers.tool_fix]\nuplfit = 0.5\n"))


def test_decide_reads_what_it_knows(tmp_path: Path) -> None:
    path = _cfg(tmp_path, "[decide]\nlifetime_months = 6\n[decide.levers.tool_fix]\nuplift = 0.5\n")
    cfg = decide.load_config(path)
    assert cfg.lifetime_months == Decimal(6)
    assert cfg.levers["tool_fix"].uplift == Decimal("0.5")
    assert cfg.levers["tool_fix"].hours == Decimal(40)  # the default kept where not given


def test_workload_and_a_missing_section(tmp_path: Path) -> None:
    path = _cfg(tmp_path, "[workload]\ntail_share = 0.1\n")
    assert workload.load_config(path) == {"tail_share": 0.1}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) tail_shar;"):
        workload.load_config(_cfg(tmp_path, "[workload]\ntail_shar = 0.1\n"))
    assert section("absent", ("a",), path) == {}
