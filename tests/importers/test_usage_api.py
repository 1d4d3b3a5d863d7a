"""``import openai-usage`` and ``import anthropic-usage``: the providers' usage buckets as
aggregate ``llm_call`` rows whose ``requests`` every call count honours.

Real file: OpenAI's cookbook output of the Usage API grouped by model and project (read in place
from the shared realdata folder). Its five results, by hand:

| start_time | model | in | out | requests |
|---|---|---|---|---|
| 1736616699 (2025-01-11T17:31:39Z) | gpt-4o-mini-2024-07-18 | 6,897 | 97 | 97 |
| 1736616699 | ft:gpt-4o-2024-08-06:distillation-test:wordle2... | 33,984 | 206 | 95 |
| 1736616699 | o1-mini-2024-09-12 | 2,846 | 8,874 | 8 |
| 1736616699 | gpt-4o-2024-08-06 | 97,474 | 579 | 270 |
| 1736640000 (2025-01-12) | gpt-4o-mini-2024-07-18 | 1,989 | 28 | 28 |

all in project proj_hNhhQzyYu7HxySZWs7cA3Ugu (mapped to ``acme``): 498 requests, 143,190 input
and 9,784 output tokens. gpt-4o-mini is $0.15 / $0.60 per Mtok, so the first row costs
6,897 x 0.15e-6 + 97 x 0.6e-6 = 0.00103455 + 0.0000582 = $0.00109275.

The Anthropic page is written from the Admin API reference (``usage_report/messages``): one
result of 1,500 uncached input tokens, 200 cache reads, 500 + 1,000 cache writes (5 minute and
1 hour) and 500 output tokens is, in the ledger's convention, 3,200 input tokens (cache
included), 200 cache reads, 1,500 cache writes, 500 output.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.analytics.period import window
from tailguard.analytics.report import customer_report
from tailguard.errors import InputError
from tailguard.importers import ImportMap, import_files
from tailguard.ledger import Ledger

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "exports"
GROUPED = REALDATA / "openai_usage_completions_grouped_model_project_head5_cookbook.json"
UNGROUPED = REALDATA / "openai_usage_completions_1d_cookbook.json"
PROJECT = "proj_hNhhQzyYu7HxySZWs7cA3Ugu"
needs_realdata = pytest.mark.skipif(not GROUPED.exists(), reason="no ../shared/realdata here")


def _ledger_rows(path: Path) -> list[tuple]:
    con = Ledger(path).connect()
    try:
        return con.execute(
            "SELECT event_id, customer_id, provider, model, requests, input_tokens, "
            "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, unpriced "
            "FROM events ORDER BY ts, model"
        ).fetchall()
    finally:
        con.close()


@needs_realdata
def test_openai_grouped_usage_by_hand(tmp_path: Path) -> None:
    mp = ImportMap(customer_ids={PROJECT: "acme"})
    res = import_files("openai-usage", [GROUPED], tmp_path / "L", mapping=mp)
    assert res.ingest.accepted == 5
    got = _ledger_rows(tmp_path / "L")
    first = next(r for r in got if r[3] == "gpt-4o-mini-2024-07-18")  # the 01-11 one
    assert first[1:9] == ("acme", "openai", "gpt-4o-mini-2024-07-18", 97, 6897, 97, 0, 0)
    assert first[0] == f"openai-usage:1736616699:{PROJECT}:::gpt-4o-mini-2024-07-18:"
    assert first[9] == Decimal("0.00109275")
    assert sum(r[4] for r in got) == 498
    assert (sum(r[5] for r in got), sum(r[6] for r in got)) == (143_190, 9_784)
    # a fine-tuned gpt-4o is priced at the fine-tune rates ($3.75 / $15 per Mtok):
    # 33,984 x 3.75e-6 + 206 x 15e-6 = 0.12744 + 0.00309
    ft = next(r for r in got if r[3].startswith("ft:"))
    assert (ft[9], ft[10]) == (Decimal("0.13053"), False)
    # every call count honours requests: report customers counts 498 calls, not 5 rows
    (row,) = customer_report(Ledger(tmp_path / "L"), window=window("2025-01"))
    assert (row["customer_id"], row["llm_calls"], row["unpriced_calls"]) == ("acme", 498, 0)


@needs_realdata
def test_openai_reimport_adds_nothing(tmp_path: Path) -> None:
    mp = ImportMap(customer_ids={PROJECT: "acme"})
    import_files("openai-usage", [GROUPED], tmp_path / "L", mapping=mp)
    again = import_files("openai-usage", [GROUPED], tmp_path / "L", mapping=mp)
    assert (again.ingest.accepted, again.ingest.duplicates) == (0, 5)


@needs_realdata
def test_openai_ungrouped_usage_is_refused_by_name(tmp_path: Path) -> None:
    """The cookbook's daily totals are not grouped by project or model: no customer to charge
    and no model to price, so every result is refused, naming the bucket and the result."""
    with pytest.raises(InputError) as err:
        import_files("openai-usage", [UNGROUPED], tmp_path / "L")
    first = err.value.problems[0]
    assert first.startswith(f"{UNGROUPED}:1: results[0].customer_id: no customer found")
    assert "group" in first
    assert not (tmp_path / "L" / "segments").exists() or Ledger(tmp_path / "L").count() == 0


def test_openai_page_shape(tmp_path: Path) -> None:
    """A page as the API returns it (bucket -> results), grouped by project, API key and model;
    input_tokens includes the cached ones (OpenAI's and the ledger's convention alike)."""
    page = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": 1730419200,  # 2024-11-01T00:00:00Z
                "end_time": 1730505600,
                "results": [
                    {"object": "organization.usage.completions.result", "input_tokens": 5000,
                     "output_tokens": 100, "num_model_requests": 12, "project_id": "proj_a",
                     "user_id": None, "api_key_id": "key_1", "model": "gpt-4o-2024-08-06",
                     "batch": False, "input_cached_tokens": 3000, "input_audio_tokens": 0,
                     "output_audio_tokens": 0},
                    {"object": "organization.usage.completions.result", "input_tokens": 10,
                     "output_tokens": 1, "num_model_requests": 1, "project_id": None,
                     "user_id": None, "api_key_id": "key_2", "model": "gpt-4o-2024-08-06",
                     "batch": False, "input_cached_tokens": 0},
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }  # fmt: skip
    src = tmp_path / "usage.json"
    src.write_text(json.dumps(page))
    mp = ImportMap(customer_ids={"proj_a": "acme", "key_2": "beta"})
    import_files("openai-usage", [src], tmp_path / "L", mapping=mp)
    got = {r[1]: r for r in _ledger_rows(tmp_path / "L")}
    assert got["acme"][4:9] == (12, 5000, 100, 3000, 0)
    assert got["beta"][4:9] == (1, 10, 1, 0, 0)  # no project: the API key names the customer
    # gpt-4o-2024-08-06: $2.50 input, $1.25 cached, $10 output per Mtok:
    # 2000 x 2.5e-6 + 3000 x 1.25e-6 + 100 x 10e-6 = 0.005 + 0.00375 + 0.001
    assert got["acme"][9] == Decimal("0.00975")


ANTHROPIC_PAGE = {
    "data": [
        {
            "starting_at": "2025-08-01T00:00:00Z",
            "ending_at": "2025-08-02T00:00:00Z",
            "results": [
                {"uncached_input_tokens": 1500,
                 "cache_creation": {"ephemeral_1h_input_tokens": 1000,
                                    "ephemeral_5m_input_tokens": 500},
                 "cache_read_input_tokens": 200, "output_tokens": 500,
                 "server_tool_use": {"web_search_requests": 0},
                 "api_key_id": "apikey_01", "workspace_id": "wrkspc_01",
                 "model": "claude-sonnet-4-20250514", "service_tier": "standard",
                 "context_window": "0-200k"},
                {"uncached_input_tokens": 7, "cache_read_input_tokens": 0,
                 "cache_creation_5m_input_tokens": 0, "cache_creation_1h_input_tokens": 0,
                 "output_tokens": 3, "api_key_id": "apikey_02", "workspace_id": None,
                 "model": None, "service_tier": "standard", "context_window": "0-200k"},
            ],
        }
    ],
    "has_more": False,
    "next_page": None,
}  # fmt: skip


def test_anthropic_usage_in_the_ledgers_convention(tmp_path: Path) -> None:
    src = tmp_path / "usage.json"
    src.write_text(json.dumps(ANTHROPIC_PAGE))
    mp = ImportMap(customer_ids={"wrkspc_01": "acme"})
    with pytest.raises(InputError) as err:  # the second result names no model
        import_files("anthropic-usage", [src], tmp_path / "L", mapping=mp)
    assert err.value.problems == [
        f"{src}:1: results[1].model: missing: query the report grouped by model (group_by=model)"
    ]
    res = import_files(
        "anthropic-usage", [src], tmp_path / "L", mapping=mp, rejects_path=tmp_path / "bad"
    )
    assert (res.ingest.accepted, res.ingest.rejected) == (1, 1)
    ((eid, customer, provider, model, requests, inp, out, cr, cw, _cost, _unp),) = _ledger_rows(
        tmp_path / "L"
    )
    assert eid == (
        "anthropic-usage:2025-08-01T00:00:00Z:wrkspc_01:apikey_01:claude-sonnet-4-20250514:"
        "standard:0-200k"
    )
    assert (customer, provider, model) == ("acme", "anthropic", "claude-sonnet-4-20250514")
    assert (requests, inp, out, cr, cw) == (1, 3200, 500, 200, 1500)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    buckets=st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from(["proj_a", "proj_b"]),
                  st.integers(1, 500), st.integers(0, 10_000)),
        min_size=1, max_size=12, unique_by=lambda b: (b[0], b[1]),
    ),
    slices=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=3),
    order=st.randoms(use_true_random=False),
)  # fmt: skip
def test_overlapping_usage_pages_count_each_bucket_once(
    tmp_path_factory: pytest.TempPathFactory,
    buckets: list[tuple[int, str, int, int]],
    slices: list[tuple[int, int]],
    order: random.Random,
) -> None:
    """Pages that overlap (re-downloaded days), imported in any order, after the whole export
    or before it: each bucket x project is one row, and the calls reports count are the sum
    of the distinct buckets' requests."""
    d = tmp_path_factory.mktemp("u")

    def page(part: list[tuple[int, str, int, int]]) -> dict:
        return {
            "object": "page",
            "data": [
                {"object": "bucket", "start_time": 1735689600 + 86400 * day,
                 "end_time": 1735689600 + 86400 * (day + 1),
                 "results": [{"object": "organization.usage.completions.result",
                              "input_tokens": tokens, "output_tokens": 1,
                              "num_model_requests": n, "project_id": proj,
                              "model": "gpt-4o-2024-08-06", "input_cached_tokens": 0}]}
                for day, proj, n, tokens in part
            ],
        }  # fmt: skip

    files = []
    for k, (a, b) in enumerate(slices):
        (d / f"p{k}.json").write_text(json.dumps(page(buckets[min(a, b) : max(a, b)])))
        files.append(d / f"p{k}.json")
    (d / "all.json").write_text(json.dumps(page(buckets)))
    files.append(d / "all.json")
    order.shuffle(files)
    for f in files:
        import_files("openai-usage", [f], d / "L")
    con = Ledger(d / "L").connect()
    rows, requests, tokens = con.execute(
        "SELECT count(*), sum(requests), sum(input_tokens) FROM events"
    ).fetchone()
    con.close()
    assert rows == len(buckets)
    assert requests == sum(b[2] for b in buckets)
    assert tokens == sum(b[3] for b in buckets)
