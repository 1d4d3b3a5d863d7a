"""``tailguard import litellm``: spend-log rows as LiteLLM documents them, figures by hand.

Prices used (the price book, per million tokens): gpt-4o $2.50 input, $1.25 cached input,
$10 output; gpt-4o-mini $0.15 / $0.60; claude-3-5-sonnet $3 input, $3.75 cache write, $15
output; Groq llama3-8b-8192 $0.05 / $0.08.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.cli.app import run
from tailguard.errors import InputError
from tailguard.importers import ImportMap, import_files
from tests.conftest import REALDATA
from tests.importers.helpers import rows, write_csv

DOCS_ROW = REALDATA / "exports" / "litellm_spendlogs_row_docs_example.json"
SCHEMA = REALDATA / "exports" / "litellm_SpendLogs_schema_excerpt.prisma.txt"


def test_the_documented_row_imports_with_its_customer_tokens_and_both_costs(
    tmp_path: Path,
) -> None:
    """LiteLLM's own /spend/logs example row. It omits the two columns the table requires
    (``request_id``, ``startTime``: ``@id`` and non-null in the Prisma schema), added here.

    Customer: ``end_user`` = "palantir"; user "default_user"; 20 prompt + 80 completion tokens.
    Tailguard's price (groq llama3-8b-8192): 20 x 0.05 + 80 x 0.08 = 1.0 + 6.4 = 7.4 micro-$
    = 0.0000074; LiteLLM's own ``spend`` 2e-06 kept beside it as 0.000002.
    """
    schema = SCHEMA.read_text()
    assert "request_id          String @id" in schema and "startTime           DateTime" in schema
    row = json.loads(DOCS_ROW.read_text())
    row |= {"request_id": "chatcmpl-docs", "startTime": "2024-05-01T10:00:00Z"}
    row |= {"model": "llama3-8b-8192", "custom_llm_provider": "groq"}
    src = tmp_path / "spend.json"
    src.write_text(json.dumps([row]))
    res = import_files("litellm", [src], tmp_path / "L")
    assert (res.ingest.accepted, res.ingest.unpriced) == (1, 0)
    got = rows(tmp_path / "L")["litellm:chatcmpl-docs"]
    assert (got["customer_id"], got["user_id"]) == ("palantir", "default_user")
    assert (got["input_tokens"], got["output_tokens"]) == (20, 80)
    assert got["cost_usd"] == Decimal("0.0000074")
    assert got["reported_cost_usd"] == Decimal("0.000002")
    assert got["cost_source"] == "price"


def _dump_rows() -> list[dict[str, object]]:
    """Three rows of a ``LiteLLM_SpendLogs`` table dump (CSV: JSON columns as JSON text,
    DateTime without a zone: Prisma stores UTC)."""
    base = {"call_type": "acompletion", "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05"}
    return [
        base
        | {
            "request_id": "req-1",
            "startTime": "2025-06-01 10:00:00.000",
            "endTime": "2025-06-01 10:00:02.500",
            "model": "gpt-4o",
            "custom_llm_provider": "openai",
            "end_user": "",
            "metadata": json.dumps(
                {
                    "user_api_key_end_user_id": "acme",
                    "usage_object": {"prompt_tokens_details": {"cached_tokens": 400}},
                }
            ),
            "request_tags": '["customer:not-this-one"]',
            "team_id": "t1",
            "prompt_tokens": 1000,
            "completion_tokens": 200,
            "spend": 0.0035,
            "status": "success",
        },
        base
        | {
            "request_id": "req-2",
            "startTime": "2025-06-01 11:00:00.000",
            "endTime": "",
            "model": "gpt-4o-mini",
            "custom_llm_provider": "openai",
            "end_user": "",
            "metadata": "{}",
            "request_tags": '["jobID:1", "customer:beta"]',
            "team_id": "t2",
            "prompt_tokens": 2000,
            "completion_tokens": 500,
            "spend": 0.0006,
            "status": "failure",
        },
        base
        | {
            "request_id": "req-3",
            "startTime": "2025-06-02 09:30:00.000",
            "endTime": "",
            "model": "claude-3-5-sonnet-20241022",
            "custom_llm_provider": "anthropic",
            "end_user": "",
            "metadata": json.dumps({"usage_object": {"cache_creation_input_tokens": 800}}),
            "request_tags": "[]",
            "team_id": "team-gamma",
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "spend": "",
            "status": "success",
        },
    ]


def test_a_table_dump_follows_the_customer_rules_in_order(tmp_path: Path) -> None:
    """req-1: no end_user, so metadata.user_api_key_end_user_id "acme" (before its tag);
    1000 prompt tokens of which 400 cached: 600 x 2.50 + 400 x 1.25 + 200 x 10 = 4000
    micro-$ = 0.004; latency 2.5 s. req-2: the ``customer:beta`` tag; failure is an error;
    2000 x 0.15 + 500 x 0.60 = 600 micro-$ = 0.0006. req-3: only ``team_id`` "team-gamma";
    800 of its 1000 prompt tokens written to the cache: 200 x 3 + 800 x 3.75 + 100 x 15 = 5100
    micro-$ = 0.0051; no spend, so no reported cost."""
    src = write_csv(tmp_path / "spend_logs.csv", _dump_rows())
    res = import_files("litellm", [src], tmp_path / "L")
    assert res.ingest.accepted == 3
    got = rows(tmp_path / "L")
    r1, r2, r3 = got["litellm:req-1"], got["litellm:req-2"], got["litellm:req-3"]
    customers = (r1["customer_id"], r2["customer_id"], r3["customer_id"])
    assert customers == ("acme", "beta", "team-gamma")
    assert (r1["input_tokens"], r1["cache_read_tokens"], r1["latency_ms"]) == (1000, 400, 2500.0)
    assert (r1["cost_usd"], r1["reported_cost_usd"]) == (Decimal("0.004"), Decimal("0.0035"))
    assert (r2["status"], r2["cost_usd"]) == ("error", Decimal("0.0006"))
    assert (r3["cache_write_tokens"], r3["cost_usd"]) == (800, Decimal("0.0051"))
    assert r3["reported_cost_usd"] is None


def test_a_map_renames_ids_relocates_the_customer_and_excludes_rows(tmp_path: Path) -> None:
    """With ``customer = ["team_id"]`` the customers are t1, t2 and team-gamma renamed to
    gamma-corp; the exclusion rule leaves out the one anthropic row (req-3)."""
    src = write_csv(tmp_path / "spend_logs.csv", _dump_rows())
    mp_path = tmp_path / "map.toml"
    mp_path.write_text(
        '[customer_ids]\n"team-gamma" = "gamma-corp"\n[fields]\ncustomer = ["team_id"]\n'
    )
    res = import_files("litellm", [src], tmp_path / "L", mapping=ImportMap.load(mp_path))
    assert res.ingest.accepted == 3
    got = {k: v["customer_id"] for k, v in rows(tmp_path / "L").items()}
    assert got == {"litellm:req-1": "t1", "litellm:req-2": "t2", "litellm:req-3": "gamma-corp"}
    mp_path.write_text('[exclude]\ncustom_llm_provider = ["anthropic"]\n')
    res = import_files("litellm", [src], tmp_path / "M", mapping=ImportMap.load(mp_path))
    assert (res.ingest.accepted, res.skipped) == (2, 1)


def test_a_map_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    mp_path = tmp_path / "map.toml"
    mp_path.write_text('[fields]\ncustomr = ["team_id"]\n[customer]\n')
    with pytest.raises(InputError) as err:
        ImportMap.load(mp_path)
    assert err.value.problems == [
        f"{mp_path}:0: customer: unknown table (one of customer_ids, fields, exclude)",
        f"{mp_path}:0: fields.customr: unknown field (one of customer, user, feature, session)",
    ]


def test_bad_rows_are_named_and_refuse_everything_without_rejects(tmp_path: Path) -> None:
    """Line 2 is good; line 3 lacks its id, line 4 a readable token count, line 5's count is
    negative (refused by the ledger's own rule, under the ledger's field name)."""
    good = _dump_rows()[0]
    src = write_csv(
        tmp_path / "spend_logs.csv",
        [
            good,
            good | {"request_id": ""},
            good | {"request_id": "req-x", "prompt_tokens": "abc"},
            good | {"request_id": "req-y", "prompt_tokens": -5},
        ],
    )
    with pytest.raises(InputError) as err:
        import_files("litellm", [src], tmp_path / "L")
    assert err.value.problems == [
        f"{src}:3: request_id: missing required field",
        f"{src}:4: prompt_tokens: not an integer: 'abc'",
        f"{src}:5: input_tokens: must be >= 0",
    ]
    assert not list((tmp_path / "L" / "segments").glob("*.parquet"))
    res = import_files("litellm", [src], tmp_path / "L", rejects_path=tmp_path / "bad.jsonl")
    assert (res.ingest.accepted, res.ingest.rejected) == (1, 3)
    lines = (tmp_path / "bad.jsonl").read_text().splitlines()
    assert [json.loads(x)["line"] for x in lines] == [3, 4, 5]


def test_a_reimport_changes_nothing(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "spend_logs.csv", _dump_rows())
    import_files("litellm", [src], tmp_path / "L")
    before = rows(tmp_path / "L")
    again = import_files("litellm", [src], tmp_path / "L")
    assert (again.ingest.accepted, again.ingest.duplicates) == (0, 3)
    assert rows(tmp_path / "L") == before


def test_cli_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """exit 0 with --json counts; 1 (one line, no traceback) on a bad row; 2 on an unknown
    source."""
    src = write_csv(tmp_path / "spend_logs.csv", _dump_rows())
    assert run(["import", "litellm", str(src), "--ledger", str(tmp_path / "L"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["source"], out["accepted"], out["rejected"]) == ("litellm", 3, 0)
    bad = write_csv(tmp_path / "bad.csv", [_dump_rows()[0] | {"request_id": ""}])
    assert run(["import", "litellm", str(bad), "--ledger", str(tmp_path / "L")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: request_id: missing required field" in err and "--rejects" in err
    assert "Traceback" not in err
    assert run(["import", "nosuch", str(src), "--ledger", str(tmp_path / "L")]) == 2
    (tmp_path / "map.toml").write_text("[fields]\ncustomer = 'end_user'\n")
    argv = ["import", "litellm", str(src), "--ledger", str(tmp_path / "L")]
    assert run([*argv, "--map", str(tmp_path / "map.toml")]) == 1
    assert "fields.customer: must be a list of paths" in capsys.readouterr().err
