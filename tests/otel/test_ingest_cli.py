"""``tailguard ingest FILE --format otlp``: the customer set on a parent in a later line,
idempotent, and bad input refused with file:line unless --rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailguard.cli import run
from tests.otel.otlp_builders import CHILD, CHILD2, ROOT, TRACE, line, span
from tests.sdk.conftest import ledger_rows

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "gen_ai.usage.output_tokens": 80,
}


def _file(tmp: Path, extra: str = "") -> Path:
    p = tmp / "traces.jsonl"
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm_lookup"}
    p.write_text(
        line([span(TRACE, CHILD2, ROOT, "chat gpt-4o-mini", CHAT)])
        + line([span(TRACE, CHILD, ROOT, "execute_tool crm_lookup", tool, start_ms=200)])
        + extra
        + line(
            [
                span(
                    TRACE,
                    ROOT,
                    None,
                    "POST /support",
                    {"tailguard.customer_id": "acme"},
                    dur_ms=900,
                )
            ]
        )
    )
    return p


def test_ingest_otlp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    led = tmp_path / "L"
    f = _file(tmp_path)
    assert run(["ingest", str(f), "--format", "otlp", "--ledger", str(led), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["spans"], out["calls"], out["accepted"], out["rejected"]) == (3, 2, 2, 0)
    rows = ledger_rows(led)
    assert [(r["kind"], r["customer_id"]) for r in rows] == [
        ("llm_call", "acme"),
        ("tool_call", "acme"),
    ]
    llm = rows[0]
    assert (llm["input_tokens"], llm["cache_read_tokens"], llm["output_tokens"]) == (1200, 1024, 80)
    assert llm["cost_usd"] is not None and not llm["unpriced"]
    # again: nothing new (ids from trace and span ids)
    assert run(["ingest", str(f), "--format", "otlp", "--ledger", str(led), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["accepted"], out["duplicates"]) == (0, 2)
    assert len(ledger_rows(led)) == 2


def test_bad_input_refused_or_set_aside(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    led = tmp_path / "L"
    no_tokens = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    bad = "{not json\n" + line([span(TRACE, "00000000000000aa", ROOT, "chat", no_tokens)])
    f = _file(tmp_path, bad)
    assert run(["ingest", str(f), "--format", "otlp", "--ledger", str(led)]) == 1
    err = capsys.readouterr().err
    assert f"{f}:3: not JSON" in err
    assert f"{f}:4: span 'chat'" in err and "no token counts" in err
    assert ledger_rows(led) == []  # untouched
    rej = tmp_path / "rej.jsonl"
    assert (
        run(["ingest", str(f), "--format", "otlp", "--ledger", str(led), "--rejects", str(rej)])
        == 0
    )
    assert len(rej.read_text().splitlines()) == 2
    assert len(ledger_rows(led)) == 2


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    assert run(["ingest", "x", "--format", "zipkin", "--ledger", str(tmp_path / "L")]) == 2
