"""The usage reports' batch marker, 1-hour cache writes and web searches, priced (issue 11).

Rows written from the providers' API references:

- Anthropic Admin API, ``GET /v1/organizations/usage_report/messages``
  (platform.claude.com/docs/en/api/admin-api/usage-cost/get-messages-usage-report): a result has
  ``uncached_input_tokens``, ``cache_creation.ephemeral_5m_input_tokens`` /
  ``ephemeral_1h_input_tokens``, ``cache_read_input_tokens``, ``output_tokens``,
  ``server_tool_use.web_search_requests`` and, grouped by it, ``service_tier`` (standard, batch,
  priority). The reference's example row: 1,500 uncached, 500 + 1,000 cache writes (5 minute,
  1 hour), 200 reads, 500 output, claude-sonnet-4-20250514; here with 10 web searches.
- OpenAI Usage API (``organization.usage.completions.result``,
  platform.openai.com/docs/api-reference/usage/completions_object): ``batch`` is true for Batch
  API requests when the query is grouped by ``batch``.

Prices (platform.claude.com/docs/en/about-claude/pricing): Claude Sonnet 4 is $3 input, $3.75
5-minute writes, $6 1-hour writes, $0.30 reads, $15 output per Mtok; batch halves every rate;
web search is "$10 per 1,000 searches" (agents-and-tools/tool-use/web-search-tool). OpenAI
(platform.openai.com/docs/pricing): gpt-4o-2024-08-06 $2.50 input / $10 output standard, $1.25 /
$5 in batch.

By hand, the Anthropic row at standard rates:

    1,500 x 3 + 500 x 3.75 + 1,000 x 6 + 200 x 0.30 + 500 x 15
    = 4,500 + 1,875 + 6,000 + 60 + 7,500 = 19,935 per Mtok = $0.019935

(at the 5-minute rate for all 1,500 writes it would be $0.016935, $0.003 short); in batch half,
$0.0099675. The 10 searches are 10 tool calls of $0.01: $0.10. The OpenAI row, 2,000 input and
100 output tokens of gpt-4o-2024-08-06 in batch: 2,000 x 1.25 + 100 x 5 = 3,000 per Mtok =
$0.003 (standard: $0.006).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from tailguard.importers import ImportMap, import_files
from tailguard.ledger import Ledger


def _result(tier: str, searches: int) -> dict[str, Any]:
    return {"uncached_input_tokens": 1500,
            "cache_creation": {"ephemeral_1h_input_tokens": 1000,
                               "ephemeral_5m_input_tokens": 500},
            "cache_read_input_tokens": 200, "output_tokens": 500,
            "server_tool_use": {"web_search_requests": searches},
            "api_key_id": "apikey_01", "workspace_id": "wrkspc_01",
            "model": "claude-sonnet-4-20250514", "service_tier": tier,
            "context_window": "0-200k"}  # fmt: skip


def _events(path: Path) -> list[dict[str, Any]]:
    con = Ledger(path).connect()
    try:
        cur = con.execute(
            "SELECT event_id, kind, customer_id, tool, cost_usd, cost_source, "
            "cache_write_cost_usd FROM events ORDER BY event_id"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def test_anthropic_row_one_hour_writes_batch_and_searches(tmp_path: Path) -> None:
    page = {"data": [{"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z",
                      "results": [_result("standard", 10), _result("batch", 0)]}],
            "has_more": False, "next_page": None}  # fmt: skip
    src = tmp_path / "usage.json"
    src.write_text(json.dumps(page))
    res = import_files(
        "anthropic-usage",
        [src],
        tmp_path / "L",
        mapping=ImportMap(customer_ids={"wrkspc_01": "acme"}),
    )
    assert res.ingest.accepted == 12  # two llm_call rows and ten searches
    ev = _events(tmp_path / "L")
    key = "anthropic-usage:2025-08-01T00:00:00Z:wrkspc_01:apikey_01:claude-sonnet-4-20250514"
    llm = {e["event_id"]: e for e in ev if e["kind"] == "llm_call"}
    assert llm[f"{key}:standard:0-200k"]["cost_usd"] == Decimal("0.019935")
    # the write part: 500 x 3.75 + 1,000 x 6 = 7,875 per Mtok
    assert llm[f"{key}:standard:0-200k"]["cache_write_cost_usd"] == Decimal("0.007875")
    assert llm[f"{key}:batch:0-200k"]["cost_usd"] == Decimal("0.0099675")
    searches = [e for e in ev if e["kind"] == "tool_call"]
    assert sorted(e["event_id"] for e in searches) == sorted(
        f"{key}:standard:0-200k:web_search:{i}" for i in range(10)
    )
    assert {(e["customer_id"], e["tool"], e["cost_usd"]) for e in searches} == {
        ("acme", "web_search", Decimal("0.01"))
    }
    assert sum(e["cost_usd"] for e in ev) == Decimal("0.1299025")  # 0.019935 + 0.0099675 + 0.1
    # a re-import adds nothing: every id comes from the bucket's key
    again = import_files(
        "anthropic-usage",
        [src],
        tmp_path / "L",
        mapping=ImportMap(customer_ids={"wrkspc_01": "acme"}),
    )
    assert again.ingest.accepted == 0


def test_anthropic_row_with_searches_only(tmp_path: Path) -> None:
    """A result with no tokens but 2 searches is two tool calls, no llm_call."""
    r = _result("standard", 2)
    r.update(uncached_input_tokens=0, cache_read_input_tokens=0, output_tokens=0,
             cache_creation={"ephemeral_1h_input_tokens": 0,
                             "ephemeral_5m_input_tokens": 0})  # fmt: skip
    src = tmp_path / "usage.json"
    src.write_text(json.dumps({"data": [{"starting_at": "2025-08-01T00:00:00Z", "results": [r]}]}))
    import_files("anthropic-usage", [src], tmp_path / "L")
    assert [(e["kind"], e["customer_id"], e["cost_usd"]) for e in _events(tmp_path / "L")] == [
        ("tool_call", "wrkspc_01", Decimal("0.01")),
        ("tool_call", "wrkspc_01", Decimal("0.01")),
    ]


def test_openai_batch_result_at_half_price(tmp_path: Path) -> None:
    page = {"object": "page", "data": [{"object": "bucket", "start_time": 1736553600,
            "end_time": 1736640000, "results": [
                {"object": "organization.usage.completions.result", "input_tokens": 2000,
                 "output_tokens": 100, "num_model_requests": 4, "project_id": "proj_a",
                 "model": "gpt-4o-2024-08-06", "batch": batch, "input_cached_tokens": 0}
                for batch in (True, False)]}]}  # fmt: skip
    src = tmp_path / "usage.json"
    src.write_text(json.dumps(page))
    import_files("openai-usage", [src], tmp_path / "L")
    got = {e["event_id"].rsplit(":", 1)[1]: e["cost_usd"] for e in _events(tmp_path / "L")}
    assert got == {"True": Decimal("0.003"), "False": Decimal("0.006")}


def test_searches_of_a_refused_row_are_refused_with_it(tmp_path: Path) -> None:
    """A result whose usage breaks the rules (output_tokens -500) is refused; its 3 web
    searches go with it (one reject line for the row), never $0.03 of searches priced for a
    call the ledger does not hold. The sound batch row beside it is kept: its call at
    $0.0099675 and its 2 searches at $0.01, $0.0299675 in all."""
    bad = _result("standard", 3)
    bad["output_tokens"] = -500
    huge = _result("priority", 4)  # input 2**63 + 200 + 500 + 1,000: past BIGINT
    huge["uncached_input_tokens"] = 2**63
    page = {"data": [{"starting_at": "2025-08-01T00:00:00Z",
                      "results": [bad, _result("batch", 2), huge]}]}  # fmt: skip
    src = tmp_path / "usage.json"
    src.write_text(json.dumps(page))
    res = import_files(
        "anthropic-usage", [src], tmp_path / "L", rejects_path=tmp_path / "rejects.jsonl"
    )
    assert res.ingest.accepted == 3 and res.ingest.rejected == 2
    assert [(r.field, r.reason) for r in res.ingest.rejects] == [
        ("results[0].output_tokens", "must be >= 0, got -500"),
        (
            "results[2].input_tokens",
            f"{2**63 + 1700} above {2**63 - 1}: not a count the ledger holds",
        ),
    ]
    ev = _events(tmp_path / "L")
    assert not [e for e in ev if ":standard:" in e["event_id"] or ":priority:" in e["event_id"]]
    assert sum(e["cost_usd"] for e in ev) == Decimal("0.0299675")
