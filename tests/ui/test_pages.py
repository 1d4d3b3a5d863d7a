"""The pages render the figures their twins hold; bad input is a 400 or 404 page; the table sorts,
filters, pages and downloads what it shows; the dashboard is read-only and, with a token, closed.

Figures by hand from tests/fixtures_asymmetric.py (June 2025): WIN 1.8877 (shown $1.89), LLM
0.625 ($0.6250), LEAN 0.0006, GHOST 0.05; total 2.5633 ($2.56).
"""

from __future__ import annotations

import csv
import html
import io
import re
from decimal import Decimal
from typing import Any

import pytest

from tailguard.ledger import Ledger
from tests.ui.helpers import ingest_lean_tool_call

JUNE = "period=2025-06"


def _page(client: Any, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def _ids(html: str) -> list[str]:
    """The customer ids of the customers table, in order."""
    body = html.split('<table class="data" id="customers">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td><a href="/customers/([^"?]+)', body)


def test_overview_shows_the_headline_and_the_kpis(client: Any) -> None:
    html = _page(client, f"/?{JUNE}")
    assert "total spend $2.56" in html
    assert "$0.8544" in html  # 2.5633 / 3 successful tasks
    assert "The eight KPIs" in html and "2025-06" in html


def test_overview_bars_are_the_days_with_spend(client: Any) -> None:
    """June's (day, component) cells with spend, from the fixture: Jun 1 llm; Jun 2 tools,
    retrieval; Jun 5 llm; Jun 9 llm, tools, retrieval; Jun 10 llm; Jun 12 llm, escalation;
    Jun 15 tools (GHOST); Jun 20 llm, escalation; Jun 28 llm: 14. Minus none: all are > 0."""
    html = _page(client, f"/?{JUNE}")
    bars = re.findall(r'<rect class="mark" data-series="([^"]+)"', html)
    assert len(bars) == 14
    assert bars.count("escalation") == 2


def test_tail_page_draws_lorenz_and_ccdf(client: Any) -> None:
    html = _page(client, f"/tail?{JUNE}")
    assert 'class="mark lorenz"' in html
    # four customers with June spend, four distinct values: four CCDF points; no power-law fit
    # under 20 distinct values, so no fitted line and no x_min
    assert html.count('class="mark point"') == 4
    assert 'class="mark fit"' not in html
    assert "too few values to fit" in html


def test_customers_page_sorts_and_pages(client: Any) -> None:
    by_cost = _ids(_page(client, f"/customers?{JUNE}"))
    assert by_cost == ["WIN", "LLM", "GHOST", "LEAN", "NONE"]
    asc = _ids(_page(client, f"/customers?{JUNE}&sort=cost_usd&order=asc"))
    assert asc == ["NONE", "LEAN", "GHOST", "LLM", "WIN"]
    p1 = _ids(_page(client, f"/customers?{JUNE}&per=2"))
    p3 = _ids(_page(client, f"/customers?{JUNE}&per=2&page=3"))
    assert (p1, p3) == (["WIN", "LLM"], ["NONE"])
    mid = _page(client, f"/customers?{JUNE}&per=2&page=2")
    assert "Rows 3–4 of 5" in mid and 'rel="next"' in mid and 'rel="prev"' in mid


def test_customers_page_filters(client: Any) -> None:
    assert _ids(_page(client, f"/customers?{JUNE}&tier=pro")) == ["WIN"]
    assert _ids(_page(client, f"/customers?{JUNE}&segment=smb")) == ["WIN", "LEAN"]
    # margin status: LLM (mid_market) 0.625 of 20 = 3.1 % and WIN 6.3 %, LEAN, NONE: ok;
    # GHOST has no customers row: unknown
    assert _ids(_page(client, f"/customers?{JUNE}&status=unknown")) == ["GHOST"]


def test_csv_is_exactly_the_rows_shown(
    client: Any, ledger_dir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from tailguard.cli.app import run

    r = client.get(f"/customers.csv?{JUNE}&per=2&page=2&sort=cost_usd")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["customer_id"] for x in rows] == ["GHOST", "LEAN"]
    assert Decimal(rows[0]["cost_usd"]) == Decimal("0.05")
    # the first page is the CLI's --csv --limit 2, byte for byte
    first = client.get(f"/customers.csv?{JUNE}&per=2").text
    capsys.readouterr()
    argv = ["report", "customers", "--ledger", str(ledger_dir), "--period", "2025-06"]
    assert run([*argv, "--limit", "2", "--csv"]) == 0
    assert first == capsys.readouterr().out


def test_customer_page(client: Any) -> None:
    page = _page(client, f"/customers/WIN?{JUNE}")
    assert "Winsome Ltd" in page and "$1.89" in page
    assert "Printable one-pager" in page
    ren = client.get("/customers/WIN/renewal")
    assert ren.status_code == 200 and "<html" in ren.text.lower()


def test_links_carry_the_window(client: Any) -> None:
    page = _page(client, f"/customers?{JUNE}&tier=pro")
    assert 'href="/customers/WIN?period=2025-06"' in page
    assert 'href="/tail?period=2025-06"' in page
    assert "sort=tasks" in page and "tier=pro" in page  # a sort link keeps the filters


@pytest.mark.parametrize("path", ["/customers/NOBODY", "/api/customers/NOBODY"])
def test_unknown_customer_is_404(client: Any, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "NOBODY" in r.text


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("/?period=2025-13", "'2025-13' is not a month"),
        ("/tail?period=June", "'June' is not a month"),
        ("/customers?from=2025-06-10&to=2025-06-01", "before the first day"),
        ("/api/customers?sort=nope", "unknown field 'nope'"),
        ("/customers?page=0", "page must be between"),
        ("/api/anomalies?threshold=-1", "threshold must be > 0"),
        ("/customers?perod=2025-06", "unknown parameter 'perod'"),
    ],
)
def test_bad_input_is_400_with_the_reason(client: Any, url: str, reason: str) -> None:
    r = client.get(url)
    assert r.status_code == 400
    assert reason in html.unescape(r.text)


def test_a_window_with_no_events_is_404_not_zeros(client: Any) -> None:
    r = client.get("/?period=2024-01")
    assert r.status_code == 404
    assert "no events" in r.text.lower()


def test_read_only(client: Any) -> None:
    assert client.post("/").status_code == 405
    assert client.post("/api/customers").status_code == 405


def test_token_is_required_when_set(asym: Ledger) -> None:
    from starlette.testclient import TestClient

    from tailguard.ui import create_app

    with TestClient(create_app(asym, token="s3cret")) as c:
        assert c.get("/api/customers").status_code == 401
        assert c.get("/api/customers", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert (
            c.get("/api/customers", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        )
        first = c.get("/?token=s3cret&" + JUNE)
        assert first.status_code == 200
        # the cookie set by the first visit opens the links that follow
        assert c.get("/tail?" + JUNE).status_code == 200


def test_cli_refuses_another_address_without_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    from tailguard.cli.app import run

    assert run(["ui", "--host", "0.0.0.0", "--ledger", "."]) == 2
    assert "--token" in capsys.readouterr().err


def test_a_new_segment_is_seen_at_once(tmp_path: Any) -> None:
    """The pages are cached by the ledger's content: an ingest (a new segment) changes the key,
    so the next request shows the new event. LEAN's June cost 0.0006 + a crm_update tool call
    at 0.02."""
    import json

    from starlette.testclient import TestClient

    from tailguard.ui import create_app
    from tests.fixtures_asymmetric import asymmetric_ledger

    led = asymmetric_ledger(tmp_path)

    def lean(c: Any) -> Decimal:
        rows = json.loads(c.get(f"/api/customers?{JUNE}").text, parse_float=Decimal)
        return next(r["cost_usd"] for r in rows if r["customer_id"] == "LEAN")

    with TestClient(create_app(led)) as c:
        assert lean(c) == Decimal("0.0006")
        assert lean(c) == Decimal("0.0006")  # served again (from the cache)
        ingest_lean_tool_call(led, tmp_path, "ui-new-1", "n2")
        assert lean(c) == Decimal("0.0206")


def test_table_cells_are_the_cli_figures(
    client: Any, ledger_dir: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each row of the customers page shows the CLI's figures for that customer, formatted by
    the one money rule: cost, cost per win, MRR and margin as ``format_usd`` prints them."""
    import json

    from tailguard.money import format_usd
    from tests.ui.helpers import cli_json

    want = json.loads(
        cli_json(capsys, "report", "customers", "--ledger", str(ledger_dir), "--period", "2025-06"),
        parse_float=Decimal,
    )
    page = _page(client, f"/customers?{JUNE}")
    body = page.split("<tbody>", 1)[1]
    for r in want:
        row = body.split(f"/customers/{r['customer_id']}?", 1)[1].split("</tr>", 1)[0]
        cells = re.findall(r'<td class="n[^"]*">([^<]*)</td>', row)
        for field in ("cost_usd", "cost_per_successful_task", "mrr_usd", "gross_margin_usd"):
            shown = "—" if r[field] is None else format_usd(r[field])
            assert shown in cells, (r["customer_id"], field, shown, cells)


def test_shape_filter_keeps_the_diagnosed_tail(client: Any) -> None:
    # no customer of the asymmetric ledger has the 20 tasks a shape needs: none matches
    page = _page(client, f"/customers?{JUNE}&shape=high_frequency")
    assert _ids(page) == []
    assert "No customer matches these filters." in page


def test_nothing_is_written_in_the_ledger(tmp_path: Any) -> None:
    """Read-only down to the files: serving every page leaves the ledger directory as it was,
    even with a segment's roll-up missing (which a report's own connection would repair)."""
    from starlette.testclient import TestClient

    from tailguard.ui import create_app
    from tests.fixtures_asymmetric import asymmetric_ledger

    led = asymmetric_ledger(tmp_path)
    rollups = sorted((led.path / "rollups").glob("*.parquet"))
    assert rollups
    rollups[0].unlink()

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(led.path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in led.path.rglob("*")
            if p.is_file()
        }

    before = snapshot()
    with TestClient(create_app(led)) as c:
        for url in ("/", "/tail", "/customers", "/customers/WIN", "/outcomes", "/anomalies"):
            assert c.get(f"{url}?{JUNE}" if url != "/anomalies" else url).status_code == 200
    assert snapshot() == before


def test_every_link_of_every_page_answers(client: Any) -> None:
    """A crawl from the overview, three links deep: every link the pages carry (navigation,
    sorting, paging, customers, the JSON twins, the CSV, the one-pager) answers 200, but the
    page of a customer with no events in the window, a 404 that says so."""
    seen: set[str] = set()
    frontier = [f"/?{JUNE}", f"/customers?{JUNE}&per=2", "/anomalies?day=2025-06-20"]
    for _ in range(3):
        found: list[str] = []
        for url in frontier:
            if url in seen:
                continue
            seen.add(url)
            r = client.get(url)
            if r.status_code == 404 and "no events" in r.text:
                # NONE has no events at all: its page says so (and, over a window, links the
                # same page over every day)
                assert url.startswith("/customers/NONE"), url
                assert "?" not in url or 'href="/customers/NONE"' in r.text
                continue
            assert r.status_code == 200, (url, r.status_code, r.text[:300])
            if r.headers["content-type"].startswith("text/html"):
                hrefs = re.findall(r'href="(/[^"]*)"', html.unescape(r.text))
                found += [h for h in hrefs if not h.startswith("/static/")]
        frontier = found
    assert len(seen) > 30
    assert "/customers/WIN/renewal" in seen and f"/customers.csv?{JUNE}&per=2" in seen


def test_warm_fills_the_first_pages(asym: Ledger) -> None:
    """``warm`` (run by ``tailguard ui`` while the server starts) computes the overview, the
    customers table and the diagnosis's population pass over every day into the caches, under
    the keys the first requests look up: a first customer page adds its own page only."""
    from starlette.testclient import TestClient

    from tailguard.ui.app import create_app, warm

    app = create_app(asym)
    warm(app)
    src = app.state.source
    first = ["customers_page", "diagnose-population", "overview_page"]
    assert sorted(k[0] for k in src._pages) == first
    with TestClient(app) as c:
        assert c.get("/").status_code == 200
        assert c.get("/customers").status_code == 200
    assert len(src._pages) == 3  # both requests were served from what warm computed
    with TestClient(app) as c:
        assert c.get("/customers/WIN").status_code == 200
    assert sorted(k[0] for k in src._pages if k[0] != "customer_page") == first


HX = {"HX-Request": "true"}


def test_htmx_request_gets_the_fragment(client: Any) -> None:
    """With HX-Request the page answers the part htmx swaps: the title, the main part, and the
    header and footer out of band, no <html>; the same rows as the whole page."""
    url = f"/customers?{JUNE}&per=2&page=2"
    whole = client.get(url)
    part = client.get(url, headers=HX)
    assert part.status_code == 200 and part.headers["vary"] == "HX-Request"
    assert whole.headers["vary"] == "HX-Request"
    assert "<html" in whole.text and "<html" not in part.text
    assert part.text.lstrip().startswith("<title>Customers · tailguard</title>")
    assert '<header class="top" id="top" hx-swap-oob="true">' in part.text
    assert '<footer id="foot" hx-swap-oob="true">' in part.text
    assert _ids(part.text) == _ids(whole.text) == ["GHOST", "LEAN"]
    # the footer's JSON link and the CSV link hold the new state
    assert 'href="/api/customers?period=2025-06&amp;per=2&amp;page=2"' in part.text
    assert 'href="/customers.csv?period=2025-06&amp;per=2&amp;page=2"' in part.text


def test_history_restore_gets_the_whole_page(client: Any) -> None:
    """The back button on a page htmx no longer holds asks again with
    HX-History-Restore-Request: that needs the whole page."""
    r = client.get(f"/tail?{JUNE}", headers={**HX, "HX-History-Restore-Request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith("<!doctype html>")


def test_errors_are_fragments_too(client: Any) -> None:
    r = client.get("/customers?period=2025-13", headers=HX)
    assert r.status_code == 400
    assert "<html" not in r.text and '<main id="main">' in r.text
    assert "is not a month" in r.text


def test_htmx_is_vendored_with_its_license(client: Any) -> None:
    """The pages load htmx from the package (no network), and its 0BSD license ships beside it."""
    page = _page(client, f"/customers?{JUNE}")
    assert '<script src="/static/htmx.min.js" defer></script>' in page
    js = client.get("/static/htmx.min.js")
    assert js.status_code == 200 and js.text.startswith("var htmx=function()")
    lic = client.get("/static/htmx.LICENSE").text
    assert "Zero-Clause BSD" in lic
    # every control that swaps says where to, and what it swaps is there
    assert page.count('hx-target="#main"') == 4 and '<main id="main">' in page


def test_warm_computes_the_default_views_again_after_an_ingest(tmp_path: Any) -> None:
    """``warm(watch=...)`` (what ``tailguard ui`` runs beside the server) caches the overview
    and the customers table for the ledger's content, and again once an ingest changes it,
    before any request asks."""
    import threading
    import time

    from tailguard.ui import create_app
    from tailguard.ui.app import warm
    from tests.fixtures_asymmetric import asymmetric_ledger

    led = asymmetric_ledger(tmp_path)
    app = create_app(led)
    src = app.state.source

    def warmed() -> set[str]:
        """The pages cached for the ledger's content as it is now."""
        now = src.version()
        return {k[0] for k in list(src._pages) if k[2] == now}

    def wait_for(names: set[str]) -> None:
        deadline = time.monotonic() + 30
        while warmed() != names:
            assert time.monotonic() < deadline, warmed()
            time.sleep(0.02)

    stop = threading.Event()
    thread = threading.Thread(target=warm, args=(app,), kwargs={"watch": 0.02, "stop": stop})
    thread.start()
    try:
        wait_for({"overview_page", "customers_page", "diagnose-population"})
        before = src.version()
        ingest_lean_tool_call(led, tmp_path, "ui-warm-1", "n3")
        assert src.version() != before
        # no request made: the watcher did it
        wait_for({"overview_page", "customers_page", "diagnose-population"})
        # the customers table of the old content was dropped, in Python and in DuckDB
        assert [k[1] for k in src._tables] == [src.version()]
        names = src._database().execute("SELECT table_name FROM duckdb_tables()").fetchall()
        assert {n for (n,) in names if "_by_" not in n} == {t.name for t in src._tables.values()}
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
