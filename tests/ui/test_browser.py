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
