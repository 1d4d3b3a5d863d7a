"""No data is not zero; one default-window rule; every output states its window (issue 18).

Ledgers are built through the real ingest (JSONL -> ``ingest``, customers CSV -> the
customers table). Months of MRR for a window that is not a calendar month = days / 30.436875
(the average Gregorian month, 365.2425 / 12); 90 days = 90 / 30.436875 = 16000 / 5411 months.

**HISTORY** (the issue's reproduction): H (team, mid_market, MRR 40) costs $1,865 on each of
Jan 1, Feb 1 and Mar 31 2026 (total 5,595); O (pro, smb, MRR 100) has one $1 event on Jan 5 and
one $0.50 event on Jul 31, four months after H's last. Z has a customers row and no event.

- ``decide H``: H's quarter is Jan 1 .. Mar 31 (the three months up to *its* last event), not
  May .. Jul (the ledger's): monthly cost = 5595 × 5411 / 16000 = 1892.1590625 (every digit),
  margin 40 - 1892.1590625 = -1852.1590625; no lever (3 tasks, fewer than 20: not judged), the
  increase needed is 4,630% > 50%, no cap lever: **offboard**, never "keep at cost 0".
- ``decide H --as-of 2026-07-31``: May 1 .. Jul 31 holds none of H's events: refused, exit 1.

**QUIET**: Q (smb, MRR 100) spends $10 on Jan 1 and $20 on Feb 10, then nothing; O spends on Jan 1
and Mar 31; N spends $5 on Jan 2 and has no customers row (its price is unknown). Q's default
quarter: Dec .. Feb clipped to the ledger = Jan 1 .. Feb 28 (59 days): monthly cost = 30 × 30.436875
/ 59 = 15.476377118644067796610169491525... (bc -l; every digit, not 15.48).

**SAME** (one explicit window Jan 1 .. Mar 31 2026, 90 days = 16000 / 5411 months):

    A (smb, MRR 500):         cost 100 + 200 + 50 = 350
        revenue 500 × 16000 / 5411 = 1478.46978377379412308260949916... (bc -l, every digit)
        cost % 350 × 5411 / 8000000 × 100 = 23.673125 exactly;  margin revenue - 350
    B (mid_market, MRR 120):  cost 300 + 100.25 = 400.25
        revenue 120 × 16000 / 5411 = 354.83274810571058953982627980...
        cost % 400.25 × 5411 / 1920000 × 100 = 112.79962239583...; margin revenue - 400.25
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.cli import run
from tailguard.ledger import Ledger, ingest, read_customers_csv

HEADER = "customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date\n"


def build(tmp_path: Path, events: list[tuple[str, str, str]], customers: str) -> str:
    """Events (customer, UTC timestamp, cost) through the real ingest; returns the ledger path."""
    rows = [
        {
            "event_id": f"e{i}",
            "kind": "llm_call",
            "ts": ts,
            "customer_id": cust,
            "user_id": f"{cust}-u",
            "feature": "chat",
            "workload": "chat",
            "provider": "openai",
            "model": "big",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": cost,
            "session_id": f"s{i}",
            "task_id": f"t{i}",
        }
        for i, (cust, ts, cost) in enumerate(events)
    ]
    src = tmp_path / "events.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    led = Ledger(tmp_path / "ledger")
    ingest([src], led)
    csv = tmp_path / "customers.csv"
    csv.write_text(HEADER + customers)
    led.write_customers(read_customers_csv(csv))
    return str(led.path)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build(
        tmp_path_factory.mktemp("history"),
        [
            ("H", "2026-01-01T09:00:00Z", "1865"),
            ("H", "2026-02-01T09:00:00Z", "1865"),
            ("H", "2026-03-31T09:00:00Z", "1865"),
            ("O", "2026-01-05T09:00:00Z", "1"),
            ("O", "2026-07-31T09:00:00Z", "0.5"),
        ],
        "H,Heavy,team,mid_market,40,5,,2025-06-01\n"
        "O,Other,pro,smb,100,1,,2025-06-01\n"
        "Z,Zero,pro,smb,100,1,,2025-06-01\n",
    )


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build(
        tmp_path_factory.mktemp("quiet"),
        [
            ("Q", "2026-01-01T10:00:00Z", "10"),
            ("Q", "2026-02-10T10:00:00Z", "20"),
            ("O", "2026-01-01T11:00:00Z", "1"),
            ("O", "2026-03-31T11:00:00Z", "2"),
            ("N", "2026-01-02T11:00:00Z", "5"),  # no customers row: its price is unknown
        ],
        "Q,Quiet,pro,smb,100,1,,2025-06-01\nO,Other,pro,smb,100,1,,2025-06-01\n",
    )


@pytest.fixture(scope="module")
def same(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build(
        tmp_path_factory.mktemp("same"),
        [
            ("A", "2026-01-01T00:00:00Z", "100"),
            ("A", "2026-02-15T12:00:00Z", "200"),
            ("A", "2026-03-31T23:59:59Z", "50"),
            ("B", "2026-01-10T08:00:00Z", "300"),
            ("B", "2026-03-20T08:00:00Z", "100.25"),
        ],
        "A,Acme,pro,smb,500,5,,2025-06-01\nB,Bolt,team,mid_market,120,2,,2025-06-01\n",
    )


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture, *argv: str) -> Any:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out, parse_float=Decimal)  # every digit, as written


def test_reproduction_history_and_a_late_event(history: str, capsys: pytest.CaptureFixture):
    """HISTORY: H is judged on its own quarter (offboard at 1892.16 a month), not KEEP at 0."""
    r = cli_json(capsys, "decide", "H", "--ledger", history)
    assert r["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
    assert Decimal(str(r["cost_to_serve_usd"])) == Decimal(5595)
    assert Decimal(str(r["monthly_cost_usd"])) == Decimal("1892.1590625")  # not 1892.16
    assert Decimal(str(r["monthly_margin_usd"])) == Decimal("-1852.1590625")
    assert r["recommendation"] == "offboard"
    code, out, _ = cli(capsys, "decide", "H", "--ledger", history)
    assert code == 0
    assert out.splitlines()[0].startswith(
        "H (team, mid_market), 2026-01-01 .. 2026-03-31: OFFBOARD"
    )
    # the ledger's quarter holds none of H's events: refused in one line naming the window,
    # H's last event and the flag to pass
    code, out, err = cli(capsys, "decide", "H", "--ledger", history, "--as-of", "2026-07-31")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "Error: 'H' has no events in 2026-05-01 .. 2026-07-31; its last event is "
        "2026-03-31 09:00 UTC; pass --as-of 2026-03-31"
    ]
    # a customer with a row and no event at all is refused too, never "costs nothing"
    code, _, err = cli(capsys, "decide", "Z", "--ledger", history)
    assert code == 1 and err.splitlines() == ["Error: 'Z' has no events in the ledger"]


def test_renewal_follows_the_customers_year(history: str, capsys: pytest.CaptureFixture):
    """H's year ends with March (its last event), clipped to the ledger: Jan 1 .. Mar 31."""
    r = cli_json(capsys, "renewal", "H", "--ledger", history)
    assert r["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
    assert [m["month"] for m in r["months"]][-1] == "2026-03"
    assert Decimal(str(r["actual_12_months_usd"])) == Decimal(5595)
    code, _, err = cli(capsys, "renewal", "Z", "--ledger", history)
    assert code == 1 and err.splitlines() == ["Error: 'Z' has no events in the ledger"]


def test_a_customer_who_went_quiet(quiet: str, capsys: pytest.CaptureFixture):
    """QUIET: Q's default quarter ends with its own last month; a window after it is refused
    by every one-customer report, and an empty window by every all-customer one."""
    r = cli_json(capsys, "decide", "Q", "--ledger", quiet)
    assert r["window"] == {"start": "2026-01-01", "end": "2026-02-28"}
    q_cost = Decimal("15.476377118644067796610169491525")  # bc -l, not 15.48
    assert abs(Decimal(str(r["monthly_cost_usd"])) - q_cost) < Decimal("1e-24")
    # Feb 10 .. Mar 31: quiet for 49 days, said in the verdict
    assert (r["last_event"], r["quiet_days"]) == ("2026-02-10T10:00:00Z", 49)
    assert any("quiet for 49 days" in line for line in r["arithmetic"])
    led = ("--ledger", quiet)
    last = "its last event is 2026-02-10 10:00 UTC"
    refused = {
        ("decide", "Q", "--period", "2026-03"): (
            f"'Q' has no events in 2026-03-01 .. 2026-03-31; {last}; pass --as-of 2026-02-10"
        ),
        ("diagnose", "--customer", "Q", "--period", "2026-03"): (
            f"'Q' has no events in 2026-03-01 .. 2026-03-31; {last}; pass --period 2026-02"
        ),
        ("renewal", "Q", "--as-of", "2025-12-31"): (
            f"'Q' has no events in 2025-01-01 .. 2025-12-31; {last}; pass --as-of 2026-02-10"
        ),
        ("margins", "--period", "2026-08"): (
            "the ledger has no events in 2026-08-01 .. 2026-08-31; the last event is "
            "2026-03-31 11:00 UTC; pass --period 2026-03"
        ),
        ("anomalies", "--day", "2026-03-15"): (
            "the ledger has no events in 2026-03-15 .. 2026-03-15; the last event is "
            "2026-03-31 11:00 UTC; pass --day 2026-03-31"
        ),
        ("digest", "weekly", "--day", "2026-06-30"): (
            "the ledger has no events in 2026-06-24 .. 2026-06-30; the last event is "
            "2026-03-31 11:00 UTC; pass --day 2026-03-31"
        ),
    }
    for argv, line in refused.items():
        code, out, err = cli(capsys, *argv, *led)
        assert (code, out, err.splitlines()) == (1, "", [f"Error: {line}"]), argv
    # events but no customers row: the price paid is unknown, not zero (never "cap: pays nothing")
    code, out, err = cli(capsys, "decide", "N", *led)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "Error: 'N' has no MRR in the customers table: the price paid is unknown, not zero "
        "(import the customers table)"
    ]
    code, out, err = cli(capsys, "report", "customers", "--period", "2026-08", *led)
    assert (code, out) == (1, "") and len(err.splitlines()) == 1
    assert "no events in 2026-08-01 .. 2026-08-31" in err


FIGURES = ("cost_usd", "revenue_usd", "cost_pct_of_mrr", "gross_margin_usd")
HAND = {
    # bc -l to 30 places; the ledger's figures carry Decimal's 28 significant digits
    "A": (
        Decimal(350),
        Decimal("1478.469783773794123082609499168"),
        23.673125,
        Decimal("1128.469783773794123082609499168"),
    ),
    "B": (
        Decimal("400.25"),
        Decimal("354.832748105710589539826279800"),
        112.79962239583333,
        Decimal("-45.417251894289410460173720200"),
    ),
}


def test_same_window_same_figures_in_every_report(same: str, capsys: pytest.CaptureFixture):
    """SAME: cost, revenue, cost % of MRR and margin agree exactly across report customers,
    margins, diagnose, decide and renewal for Jan 1 .. Mar 31, and equal the hand values."""
    win = ("--ledger", same, "--from", "2026-01-01", "--to", "2026-03-31")
    report = {r["customer_id"]: r for r in cli_json(capsys, "report", "customers", *win)}
    margins = cli_json(capsys, "margins", *win)
    assert margins["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
    by_margin = {r["customer_id"]: r for r in margins["customers"]}
    for cid, hand in HAND.items():
        (diag,) = cli_json(capsys, "diagnose", "--customer", cid, *win)
        dec = cli_json(capsys, "decide", cid, *win)
        ren = cli_json(capsys, "renewal", cid, "--ledger", same, "--as-of", "2026-03-31")
        assert dec["window"] == ren["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
        assert report[cid]["window_start"] == diag["window_start"] == "2026-01-01"
        assert report[cid]["window_end"] == diag["window_end"] == "2026-03-31"
        dec["cost_usd"] = dec["cost_to_serve_usd"]
        seen = [
            tuple(src[k] for k in FIGURES) for src in (report[cid], by_margin[cid], diag, dec, ren)
        ]
        assert seen == [seen[0]] * 5, cid
        cost, revenue, pct, margin = seen[0]
        got = [Decimal(str(v)) for v in (cost, revenue, margin)]
        assert got[0] == hand[0]
        assert abs(got[1] - hand[1]) < Decimal("1e-22") and abs(got[2] - hand[3]) < Decimal("1e-22")
        assert float(pct) == pytest.approx(
            hand[2], rel=1e-14
        )  # every digit: not rounded to 4 places


def test_the_default_windows_state_themselves(same: str, capsys: pytest.CaptureFixture):
    """With no flag, the all-customer reports cover the ledger's days (Jan 1 .. Mar 31: the same
    figures as the explicit window) and say so in every row, title and JSON."""
    led = ("--ledger", same)
    rows = cli_json(capsys, "report", "customers", *led)
    assert {(r["window_start"], r["window_end"]) for r in rows} == {("2026-01-01", "2026-03-31")}
    a = next(r for r in rows if r["customer_id"] == "A")
    assert abs(Decimal(str(a["revenue_usd"])) - HAND["A"][1]) < Decimal("1e-22")
    m = cli_json(capsys, "margins", *led)
    assert m["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
    assert cli_json(capsys, "anomalies", *led)["window"] == {
        "start": "2026-03-31",
        "end": "2026-03-31",
    }
    weekly = cli_json(capsys, "digest", "weekly", *led)
    assert weekly["window"] == {"start": "2026-03-25", "end": "2026-03-31"}
    quarterly = cli_json(capsys, "digest", "quarterly", *led)
    assert quarterly["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
    _, out, _ = cli(capsys, "margins", *led)
    assert "Margins 2026-01-01 .. 2026-03-31" in out
    _, out, _ = cli(capsys, "diagnose", *led)
    assert "Cost tail 2026-01-01 .. 2026-03-31" in out
    _, out, _ = cli(capsys, "renewal", "A", *led)
    assert "2026-01-01 .. 2026-03-31" in out
    _, out, _ = cli(capsys, "report", "customers", *led)
    assert "Per-customer unit economics, 2026-01-01 .. 2026-03-31" in out
    for cmd in ("outcomes", "workload"):
        assert cli_json(capsys, cmd, *led)["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
    conc = cli_json(capsys, "concentration", *led)
    assert conc["window"] == {"start": "2026-01-01", "end": "2026-03-31"}
    code, _, err = cli(capsys, "concentration", "--period", "2026-08", *led)
    assert code == 1 and "pass --period 2026-03" in err
    # kpis: the month of the last event, judged up to that day
    assert cli_json(capsys, "kpis", *led)["window"] == {"start": "2026-03-01", "end": "2026-03-31"}


def test_csv_for_decide_renewal_digest(same: str, capsys: pytest.CaptureFixture):
    """decide, renewal and digest print CSV too, each row stating its window. A in February
    (a calendar month: revenue = MRR = 500): cost 200, 40% of MRR, margin 300."""
    led = ("--ledger", same)
    code, out, _ = cli(capsys, "decide", "A", *led, "--period", "2026-02", "--csv")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    row = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert (row["window_start"], row["window_end"]) == ("2026-02-01", "2026-02-28")
    got = [Decimal(row[k]) for k in ("cost_to_serve_usd", "revenue_usd", "cost_pct_of_mrr")]
    assert got == [Decimal(200), Decimal(500), Decimal(40)]
    assert Decimal(row["gross_margin_usd"]) == Decimal(300)
    code, out, _ = cli(capsys, "renewal", "A", *led, "--csv")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1 + 24  # twelve months shown, twelve projected
    assert lines[0].startswith("customer_id,kind,month,cost_usd")
    march = lines[12].split(",")
    assert march[:3] == ["A", "actual", "2026-03"] and Decimal(march[3]) == Decimal(50)
    assert march[-2:] == ["2026-01-01", "2026-03-31"]
    assert lines[13].startswith("A,projected,2026-04,")
    code, out, _ = cli(capsys, "digest", "quarterly", *led, "--csv")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("rhythm,window_start,window_end,section,key")
    team = next(x.split(",") for x in lines if ",tier,team," in x)
    assert team[:6] == ["quarterly", "2026-01-01", "2026-03-31", "tier", "team", ""]
    assert Decimal(team[6]) == Decimal("400.25")


def _frozen_clock(monkeypatch: pytest.MonkeyPatch, years: int) -> None:
    """Every ``datetime.datetime.now()`` / ``utcnow()`` / ``today()`` answers ``years`` later
    (the classes are looked up on the ``datetime`` module at each call, so this reaches every
    module that does ``import datetime as dt``)."""
    real = datetime.datetime
    shift = datetime.timedelta(days=365 * years)

    class Frozen(real):  # type: ignore[misc, valid-type]
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> Any:
            return real.now(tz) + shift

        @classmethod
        def utcnow(cls) -> Any:
            return real.now(datetime.UTC).replace(tzinfo=None) + shift

        @classmethod
        def today(cls) -> Any:
            return real.now() + shift

    monkeypatch.setattr(datetime, "datetime", Frozen)


COMMANDS: list[tuple[str, ...]] = [
    ("decide", "H"),
    ("decide", "Z"),
    ("renewal", "H"),
    ("renewal", "Z"),
    ("report", "customers"),
    ("margins",),
    ("diagnose",),
    ("diagnose", "--customer", "H"),
    ("anomalies",),
    ("digest", "daily"),
    ("digest", "weekly"),
    ("digest", "quarterly"),
    ("kpis",),
]


def test_a_clock_a_year_ahead_changes_no_output(
    history: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every default window is dated by the ledger's events, never by the wall clock: the same
    commands give the same bytes with the clock moved a year ahead (Z, a customers row without
    events, is where a clock used to leak in: renewal dated its year by today)."""
    runs = [cli(capsys, *argv, "--ledger", history, "--json") for argv in COMMANDS]
    assert [code for code, _, _ in runs].count(0) == len(COMMANDS) - 2  # Z refused twice
    with monkeypatch.context() as m:
        _frozen_clock(m, 1)
        assert datetime.datetime.now(datetime.UTC).year >= 2027  # the clock did move
        later = [cli(capsys, *argv, "--ledger", history, "--json") for argv in COMMANDS]
    for argv, before, after in zip(COMMANDS, runs, later, strict=True):
        assert before == after, argv


# --- invariant: any window, one set of figures ------------------------------------------------

SPREAD = [
    # (customer, day of 2026 counted from Jan 1 = 0, cost)
    *(("A", d, str(10 + d % 7)) for d in range(0, 120, 3)),
    *(("B", d, str(25 + d % 5) + ".5") for d in range(5, 70, 4)),
    *(("C", d, "0.125") for d in range(60, 121, 10)),
]


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """A (smb, MRR 500) every third day Jan 1 .. Apr 28, B (mid_market, MRR 120) Jan 6 .. Mar 7,
    C (enterprise, MRR 1000) Mar 2 .. May 1, D (smb, MRR 50) never."""
    start = datetime.date(2026, 1, 1)
    events = [(c, f"{start + datetime.timedelta(days=d)}T12:00:00Z", cost) for c, d, cost in SPREAD]
    path = build(
        tmp_path_factory.mktemp("spread"),
        events,
        "A,A,pro,smb,500,5,,2025-06-01\nB,B,team,mid_market,120,2,,2025-06-01\n"
        "C,C,enterprise,enterprise,1000,20,,2025-06-01\nD,D,pro,smb,50,1,,2025-06-01\n",
    )
    return Ledger(path)


@settings(max_examples=30, deadline=None)
@given(first=st.integers(0, 125), days=st.integers(1, 70))
def test_any_window_gives_one_set_of_figures(spread: Ledger, first: int, days: int) -> None:
    """For any window: report customers, margins, diagnose and decide give the same cost,
    revenue, cost % of MRR and margin for every customer with events in it; a customer without
    events in it is refused by the one-customer reports; a window without any event by all."""
    from tailguard.analytics.customers import customer_rows
    from tailguard.analytics.decide import decide
    from tailguard.analytics.diagnose import diagnose
    from tailguard.analytics.margins import margins
    from tailguard.analytics.period import day_window
    from tailguard.errors import NoDataError

    lo = datetime.date(2026, 1, 1) + datetime.timedelta(days=first)
    win = day_window(lo, lo + datetime.timedelta(days=days - 1))
    inside = {c for c, d, _ in SPREAD if first <= d < first + days}
    con = spread.connect()
    try:
        if not inside:
            with pytest.raises(NoDataError):
                margins(con, win)
            return
        rows = {r["customer_id"]: r for r in customer_rows(con, win)}
        by_margin = {r["customer_id"]: r for r in margins(con, win)["customers"]}
        for cid in ("A", "B", "C", "D"):
            if cid not in inside:
                assert rows[cid]["cost_usd"] == 0  # the table lists it; it refuses no one
                with pytest.raises(NoDataError, match=f"'{cid}' has no events"):
                    decide(con, cid, window=win)
                with pytest.raises(NoDataError, match=f"'{cid}' has no events"):
                    diagnose(con, win, customer=cid)
                continue
            (diag,) = diagnose(con, win, customer=cid)
            dec = decide(con, cid, window=win)
            dec["cost_usd"] = dec["cost_to_serve_usd"]
            figures = [tuple(r[k] for k in FIGURES) for r in (rows[cid], by_margin[cid], diag, dec)]
            assert figures == [figures[0]] * 4
            assert rows[cid]["cost_usd"] == sum(
                (Decimal(c) for x, d, c in SPREAD if x == cid and first <= d < first + days),
                Decimal(0),
            )
    finally:
        con.close()
