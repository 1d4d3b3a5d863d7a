"""The dashboard in a real browser: Debian's chromium driven by Playwright, over a real socket.

Each page loads with no console error and draws its charts (SVG with the expected marks); the
customers table sorts by a click on a header, pages with its links, and filters with its form.
A screenshot of every page is kept as a test artefact (printed path, under pytest's tmp dir).
Figures from tests/fixtures_asymmetric.py, June 2025 (order by cost: WIN, LLM, GHOST, LEAN,
NONE).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailguard.ledger import Ledger
from tests.ui.helpers import CHROMIUM, CHROMIUM_ARGS, serve

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (scripts/test does it)"
)

JUNE = "period=2025-06"


@pytest.fixture(scope="module")
def base_url(asym: Ledger) -> Iterator[str]:
    from tailguard.ui import create_app

    with serve(create_app(asym)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.errors = []  # console errors and uncaught exceptions, for the test to check
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ctx.close()


#: (name, path, {CSS selector: how many at least})
PAGES = [
    ("overview", f"/?{JUNE}", {"svg.chart rect.mark": 14, "table.kpis tbody tr": 8}),
    ("tail", f"/tail?{JUNE}", {"svg.chart polyline.lorenz": 1, "svg.chart circle.point": 4}),
    ("customers", f"/customers?{JUNE}", {"#customers tbody tr": 5}),
    # WIN: 10 (day, component) bars, 4 days by model; a cost per win in 2 weeks (Jun 2, Jun 9)
    ("customer", f"/customers/WIN?{JUNE}", {"svg.chart rect.mark": 14, "svg.chart circle.mark": 2}),
    ("outcomes", f"/outcomes?{JUNE}", {"svg.chart rect.mark": 3}),
    ("anomalies", "/anomalies?day=2025-06-20", {"table.data": 3}),
]


@pytest.mark.parametrize(("name", "path", "marks"), PAGES, ids=[p[0] for p in PAGES])
def test_page_loads_clean_and_draws(
    page: Any, base_url: str, shots: Path, name: str, path: str, marks: dict[str, int]
) -> None:
    res = page.goto(base_url + path)
    assert res is not None and res.status == 200
    page.wait_for_load_state("load")
    for selector, least in marks.items():
        n = page.locator(selector).count()
        assert n >= least, f"{selector}: {n} < {least}"
    # a mark is drawn with a real size, not just present in the markup
    if page.locator("svg.chart .mark").count():
        box = page.locator("svg.chart .mark").first.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0
    out = shots / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    print(f"screenshot: {out}")
    assert page.errors == []


def _ids(page: Any) -> list[str]:
    return page.locator("#customers tbody tr td:first-child a").all_inner_texts()


def test_sorting_by_clicking_headers(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/customers?{JUNE}")
    assert _ids(page) == ["WIN", "LLM", "GHOST", "LEAN", "NONE"]
    page.click("th a[data-sort=cost_usd]")  # sorted descending already: the click flips it
    page.wait_for_url("**order=asc**")
    assert _ids(page) == ["NONE", "LEAN", "GHOST", "LLM", "WIN"]
    page.click("th a[data-sort=llm_calls]")
    page.wait_for_url("**sort=llm_calls**")
    # llm calls in June: WIN 7, LLM 4, LEAN 1, GHOST 0, NONE 0 (ties by id, descending)
    assert _ids(page) == ["WIN", "LLM", "LEAN", "NONE", "GHOST"]
    assert page.errors == []


def test_paging_with_the_links(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/customers?{JUNE}&per=2")
    assert _ids(page) == ["WIN", "LLM"]
    page.click("a[rel=next]")
    page.wait_for_url("**page=2**")
    assert _ids(page) == ["GHOST", "LEAN"]
    page.click("a[rel=next]")
    page.wait_for_url("**page=3**")
    assert _ids(page) == ["NONE"]
    assert page.locator("a[rel=next]").count() == 0
    page.click("a[rel=prev]")
    page.wait_for_url("**page=2**")
    assert _ids(page) == ["GHOST", "LEAN"]


def test_filtering_with_the_form(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/customers?{JUNE}")
    page.select_option("select[name=segment]", "smb")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**segment=smb**")
    assert _ids(page) == ["WIN", "LEAN"]
    assert "period=2025-06" in page.url  # the window stays in the link


# --- htmx: sorting, paging, filtering and the period picker swap the page's main part in place


def _watch_swaps(page: Any) -> None:
    """Count htmx's settled swaps and mark the document: a full page load would lose both."""
    page.evaluate(
        "window.__swaps = 0; window.__same_document = true;"
        "document.body.addEventListener('htmx:afterSettle', () => window.__swaps++)"
    )


def _swap(page: Any, action: Any, url_part: str) -> None:
    """Do ``action`` and wait until htmx has swapped its answer in and the URL holds
    ``url_part``; then check the document was not reloaded."""
    before = page.evaluate("window.__swaps")
    action()
    page.wait_for_function(f"window.__swaps > {before}")
    page.wait_for_url(f"**{url_part}**")
    assert page.evaluate("window.__same_document") is True  # swapped in place, not reloaded


def _fragments(page: Any) -> list[str]:
    """Collect the bodies of the htmx answers (requests sent with HX-Request)."""
    got: list[str] = []

    def on_response(res: Any) -> None:
        if res.request.headers.get("hx-request") == "true":
            got.append(res.text())

    page.on("response", on_response)
    return got


def test_paging_and_sorting_swap_in_place(page: Any, base_url: str) -> None:
    fragments = _fragments(page)
    page.goto(f"{base_url}/customers?{JUNE}&per=2")
    page.wait_for_function("window.htmx !== undefined")
    _watch_swaps(page)
    _swap(page, lambda: page.click("a[rel=next]"), "page=2")
    assert _ids(page) == ["GHOST", "LEAN"]
    assert page.locator(".pager").inner_text().startswith("Rows 3–4 of 5")
    # the CSV link and the JSON link of the swapped page carry the new state
    assert "page=2" in page.get_attribute("a[download]", "href")
    assert "page=2" in page.get_attribute("footer a", "href")
    _swap(page, lambda: page.click("th a[data-sort=llm_calls]"), "sort=llm_calls")
    # llm calls in June: WIN 7, LLM 4, LEAN 1, GHOST 0, NONE 0; the sort goes back to page 1
    assert _ids(page) == ["WIN", "LLM"]
    _swap(page, lambda: page.click("a[rel=next]"), "page=2")
    assert _ids(page) == ["LEAN", "NONE"]
    # the server answered fragments: no <html>, the main part and the header out of band
    assert len(fragments) == 3
    for text in fragments:
        assert "<html" not in text and '<main id="main">' in text
        assert 'id="top" hx-swap-oob="true"' in text
    # the URL in the address bar, pasted into a new tab, shows the same rows
    url = page.url
    fresh = page.context.new_page()
    fresh.goto(url)
    assert _ids(fresh) == ["LEAN", "NONE"]
    fresh.close()
    # back: the previous view, from htmx's history
    page.go_back()
    page.wait_for_url("**sort=llm_calls**")
    page.wait_for_function("document.querySelectorAll('#customers tbody tr').length == 2")
    assert _ids(page) == ["WIN", "LLM"]
    assert page.errors == []


def test_filter_form_swaps_in_place(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/customers?{JUNE}")
    page.wait_for_function("window.htmx !== undefined")
    _watch_swaps(page)
    page.select_option("select[name=segment]", "smb")
    _swap(page, lambda: page.click("form.filters button[type=submit]"), "segment=smb")
    assert _ids(page) == ["WIN", "LEAN"]
    assert "period=2025-06" in page.url
    assert "2 customers match the filters" in page.locator("h1").inner_text()
    assert page.errors == []


def test_period_picker_swaps_in_place(page: Any, base_url: str) -> None:
    """The tail over every day, then June from the header's picker: the figures, the nav links
    (swapped out of band) and the title follow; a bad month is the 400 page, swapped in too."""
    page.goto(f"{base_url}/tail")
    page.wait_for_function("window.htmx !== undefined")
    _watch_swaps(page)
    page.fill("form.window input[name=period]", "2025-06")
    _swap(page, lambda: page.click("form.window button[type=submit]"), "period=2025-06")
    assert "2025-06-01 – 2025-06-30" in page.locator("h1").inner_text()
    assert page.locator("nav a[href='/customers?period=2025-06']").count() == 1
    assert page.locator("svg.chart polyline.lorenz").count() == 1
    assert page.title() == "Tail · tailguard"
    assert page.errors == []
    page.fill("form.window input[name=period]", "2025-13")
    _swap(page, lambda: page.click("form.window button[type=submit]"), "period=2025-13")
    assert "period: '2025-13' is not a month" in page.locator("main .reason").inner_text()
    # the browser reports the 400 answer itself; htmx adds no error of its own
    assert [e for e in page.errors if "status of 400" not in e] == []
