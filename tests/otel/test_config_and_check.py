"""The [otel] table (unknown keys refused by name; custom attribute names used), and the
receiver's Python check of the event rules agreeing with the full schema validation."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.cli import run
from tailguard.errors import ConfigError
from tailguard.otel.config import OtelConfig, load_otel_config
from tailguard.otel.ingest import validate
from tailguard.otel.mapping import Rejected, check, event_of
from tailguard.otel.otlp import spans_from_json
from tests.otel.otlp_builders import CHILD, ROOT, TRACE, line, request, span
from tests.sdk.conftest import ledger_rows


def test_unknown_key_named(tmp_path: Path) -> None:
    p = tmp_path / "t.toml"
    p.write_text("[otel]\nhold_seconds = 5\n")
    with pytest.raises(ConfigError, match=r"t\.toml: \[otel\]: .*hold_seconds"):
        load_otel_config(p)


def test_custom_attribute_names_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tailguard.toml").write_text('[otel]\ncustomer_attributes = ["app.tenant"]\n')
    monkeypatch.chdir(tmp_path)  # the config file every command reads
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 2,
        "gen_ai.usage.output_tokens": 1,
    }
    f = tmp_path / "t.jsonl"
    f.write_text(
        line([span(TRACE, CHILD, ROOT, "chat", chat)])
        + line([span(TRACE, ROOT, None, "root", {"app.tenant": "t-9"})])
    )
    assert run(["ingest", str(f), "--format", "otlp", "--ledger", str(tmp_path / "L")]) == 0
    (row,) = ledger_rows(tmp_path / "L")
    assert row["customer_id"] == "t-9"


WORKLOADS = st.sampled_from(["chat", "agent", "rag", "other", "batch", "", "CHAT"])


@settings(max_examples=300, deadline=None)
@given(
    customer=st.text(min_size=1, max_size=600),
    workload=st.one_of(st.none(), WORKLOADS),
    model=st.text(max_size=600),
    inp=st.integers(0, 2**64),
    out=st.integers(0, 2**64),
    cost=st.one_of(st.none(), st.decimals(min_value=0, max_value=Decimal("2e9"), places=9)),
    kind=st.sampled_from(["llm_call", "tool_call", "retrieval"]),
)
def test_check_agrees_with_the_schema(
    customer: str,
    workload: str | None,
    model: str,
    inp: int,
    out: int,
    cost: Decimal | None,
    kind: str,
) -> None:
    """Whatever the span carries, the receiver's cheap ``check`` accepts exactly the events the
    full schema validation (msgspec, the ledger's own) accepts."""
    a: dict[str, object] = {
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "gen_ai.tool.name": model,
    }
    if cost is not None:
        a["gen_ai.usage.cost"] = str(cost)
    req = json.loads(json.dumps(request([span(TRACE, CHILD, None, "x", {})])))
    (s,) = spans_from_json(req)
    s.attrs = a  # values a decoder would hand over (ints of any size, any strings)
    who: dict[str, str | None] = {"customer_id": customer, "workload": workload}
    try:
        ev = event_of(s, kind, who, OtelConfig())
    except Rejected:
        return
    assert (check(ev) is None) == (validate(ev) is None), (check(ev), validate(ev))
