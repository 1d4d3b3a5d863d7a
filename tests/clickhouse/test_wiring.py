"""A ClickHouse URL wherever a ledger is named: the CLI, the SDK sink, the gateway's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailguard.cli.app import run
from tailguard.gateway.config import parse_config
from tailguard.ledger import Ledger
from tailguard.ledger.clickhouse import ClickHouseLedger
from tailguard.sdk.sinks import LedgerSink

from .helpers import PRICES_TOML, chdb_url, llm, write_jsonl

CUSTOMERS = "customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date\n"


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_the_cli_inits_ingests_imports_and_reports_on_chdb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = chdb_url(tmp_path / "c")
    (tmp_path / "p.toml").write_text(PRICES_TOML)
    ev = write_jsonl(tmp_path / "ev.jsonl", [llm(i, cust=f"c{i % 2}") for i in range(6)])
    (tmp_path / "cu.csv").write_text(CUSTOMERS + "c0,Zero,pro,smb,10,1,,2025-01-01\n")
    assert run(["ledger", "init", "--engine", "clickhouse", "--ledger", url, "--json"]) == 0
    assert _json(capsys) == {
        "ledger": url,
        "engine": "clickhouse",
        "changes": ["CREATE TABLE default.ledger_events"],
    }
    prices = ["--prices", str(tmp_path / "p.toml")]
    assert run(["ingest", str(ev), "--ledger", url, *prices, "--json"]) == 0
    assert _json(capsys)["accepted"] == 6  # type: ignore[index]
    assert run(["customers", "import", str(tmp_path / "cu.csv"), "--ledger", url]) == 0
    capsys.readouterr()
    assert run(["report", "customers", "--ledger", url, "--period", "2026-01", "--json"]) == 0
    rows = _json(capsys)
    got = sorted((r["customer_id"], r["cost_usd"], r["name"]) for r in rows)  # type: ignore[union-attr]
    assert got == [("c0", 0.0036, "Zero"), ("c1", 0.0036, None)]  # three calls of $0.0012 each


def test_a_missing_clickhouse_ledger_is_named_and_how_to_make_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = chdb_url(tmp_path / "none")
    assert run(["report", "customers", "--ledger", url]) == 1
    assert f"tailguard ledger init --engine clickhouse --ledger {url}" in capsys.readouterr().err


def test_an_empty_clickhouse_ledger_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = chdb_url(tmp_path / "empty")
    assert run(["ledger", "init", "--engine", "clickhouse", "--ledger", url]) == 0
    assert run(["report", "customers", "--ledger", url]) == 1
    assert "holds no events yet" in capsys.readouterr().err


def test_init_refuses_an_engine_that_does_not_match_the_ledger(tmp_path: Path) -> None:
    assert run(["ledger", "init", "--engine", "clickhouse", "--ledger", str(tmp_path)]) == 2
    assert run(["ledger", "init", "--engine", "duckdb", "--ledger", chdb_url(tmp_path)]) == 2


def test_copy_moves_a_directory_ledger_into_chdb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.toml").write_text(PRICES_TOML)
    ev = write_jsonl(tmp_path / "ev.jsonl", [llm(i) for i in range(7)])
    d = str(tmp_path / "d")
    assert run(["ingest", str(ev), "--ledger", d, "--prices", str(tmp_path / "p.toml")]) == 0
    capsys.readouterr()
    url = chdb_url(tmp_path / "c")
    assert run(["ledger", "copy", "--from", d, "--to", url, "--json"]) == 0
    assert _json(capsys) == {"from": d, "to": url, "copied": 7, "duplicates": 0}
    assert ClickHouseLedger(url).count() == Ledger(d).count() == 7


def test_the_sdk_sink_logs_locally_and_folds_into_chdb(tmp_path: Path) -> None:
    url = chdb_url(tmp_path / "c")
    (tmp_path / "p.toml").write_text(PRICES_TOML)
    sink = LedgerSink(url, prices=tmp_path / "p.toml", fold_interval_s=3600)
    assert sink.path == (tmp_path / "c").resolve()  # the write-ahead log is beside the data
    sink.send([llm(1), llm(2)])
    sink.send([llm(2), llm(3)])  # a resend of e2
    sink.close()
    assert ClickHouseLedger(url).count() == 3


def test_the_gateway_config_takes_a_clickhouse_url(tmp_path: Path) -> None:
    raw = {
        "gateway": {"ledger": "chdb:///var/lib/tg"},
        "upstream": [{"provider": "openai", "base_url": "http://x.invalid/v1"}],
    }
    cfg = parse_config(raw, base=tmp_path, env={})
    assert (cfg.ledger_url, cfg.ledger) == ("chdb:///var/lib/tg", Path("/var/lib/tg"))
    env = {"TAILGUARD_LEDGER": "clickhouse://db:8123/tg?spool=/spool"}
    cfg = parse_config({"gateway": {}, "upstream": raw["upstream"]}, base=tmp_path, env=env)
    assert (cfg.ledger_url, cfg.ledger) == ("clickhouse://db:8123/tg?spool=/spool", Path("/spool"))
    cfg = parse_config({"gateway": {"ledger": "data"}, "upstream": raw["upstream"]}, base=tmp_path)
    assert (cfg.ledger_url, cfg.ledger) == (None, tmp_path / "data")


@pytest.fixture(scope="module")
def cli_twins(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The asymmetric ledger ingested through the CLI into a directory and into chdb."""
    from tests.fixtures_asymmetric import write_asymmetric

    d = tmp_path_factory.mktemp("cli")
    ev, prices, cust = write_asymmetric(d)
    ledgers = [str(d / "duck"), chdb_url(d / "ch")]
    for led in ledgers:
        assert run(["ingest", str(ev), "--ledger", led, "--prices", str(prices)]) == 0
        assert run(["customers", "import", str(cust), "--ledger", led]) == 0
    return ledgers


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "customers", "--period", "2025-06"],  # rollup_month
        ["report", "customers"],  # the open window: rollup_customer
        ["report", "customers", "--from", "2025-06-02", "--to", "2025-06-20"],  # daily, task
        ["report", "customers", "--sort", "llm_calls", "--limit", "2"],
        ["workload"],  # rollup_task, rollup_calls over the open window
        ["concentration", "--period", "2025-06"],
        ["kpis", "--period", "2025-06"],
        ["margins", "--period", "2025-06"],
        ["diagnose", "--period", "2025-06"],
        ["outcomes", "--period", "2025-06"],
        ["workload", "--period", "2025-06"],
        ["anomalies"],
        ["decide", "WIN"],
        ["renewal", "WIN"],
        ["digest", "weekly"],
    ],
)
def test_cli_reports_print_the_same_json_on_both_engines(
    cli_twins: list[str], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Every report command, on the same events in a directory ledger and in chdb."""
    out = []
    for led in cli_twins:
        capsys.readouterr()
        assert run([*argv, "--ledger", led, "--json"]) == 0
        out.append(capsys.readouterr().out)
    assert out[0] == out[1]
    assert len(out[0]) > 40  # figures, not an empty answer


def test_the_gateway_logs_locally_and_folds_into_chdb(tmp_path: Path) -> None:
    """create_gateway on a chdb URL: the write-ahead log under the chdb directory, its events in
    ClickHouse once folded (here at close), a replayed event counted once."""
    import asyncio

    from tailguard.gateway.app import create_gateway

    (tmp_path / "p.toml").write_text(PRICES_TOML)
    url = chdb_url(tmp_path / "c")
    raw = {
        "gateway": {"ledger": url, "prices": str(tmp_path / "p.toml")},
        "upstream": [{"provider": "openai", "base_url": "http://x.invalid/v1"}],
    }
    gw = create_gateway(parse_config(raw, base=tmp_path, env={}))
    assert gw.wal.dir == (tmp_path / "c").resolve() / "wal"
    gw.wal.submit([llm(1), llm(2)]).result()
    gw.wal.submit([llm(2)]).result()
    asyncio.run(gw.aclose())
    led = ClickHouseLedger(url)
    assert led.count() == 2
    got = led.query("SELECT sum(cost_usd) AS c FROM events").column("c")[0].as_py()
    assert str(got) == "0.002400000"


def test_collect_logs_locally_and_folds_into_chdb(tmp_path: Path) -> None:
    """``tailguard collect --ledger chdb:///DIR``: the receiver's log and spool under DIR, the
    folded events in ClickHouse."""
    from tailguard.otel.receiver import CollectApp
    from tailguard.pricing import PriceBook

    (tmp_path / "p.toml").write_text(PRICES_TOML)
    url = chdb_url(tmp_path / "c")
    app_ = CollectApp(url, prices=PriceBook.load(tmp_path / "p.toml"), flush_interval_s=3600)
    assert app_.path == (tmp_path / "c").resolve()
    app_.wal.submit([llm(1), llm(2)]).result()
    assert app_.wal.flush() == 2
    app_.wal.close()
    assert ClickHouseLedger(url).count() == 2


def test_rollup_command_refreshes_a_clickhouse_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.toml").write_text(PRICES_TOML)
    ev = write_jsonl(tmp_path / "ev.jsonl", [llm(1), llm(2, ts="2026-02-01T00:00:00Z")])
    url = chdb_url(tmp_path / "c")
    assert run(["ingest", str(ev), "--ledger", url, "--prices", str(tmp_path / "p.toml")]) == 0
    capsys.readouterr()
    assert run(["rollup", "--ledger", url, "--json"]) == 0
    assert _json(capsys) == {"ledger": url, "rebuild": False, "months": [202601, 202602]}
    assert run(["rollup", "--ledger", url, "--json"]) == 0
    assert _json(capsys) == {"ledger": url, "rebuild": False, "months": []}  # up to date
    assert run(["rollup", "--rebuild", "--ledger", url, "--json"]) == 0
    assert _json(capsys) == {"ledger": url, "rebuild": True, "months": [202601, 202602]}
