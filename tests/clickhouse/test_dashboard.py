"""The dashboard's JSON (``tailguard ui``'s /api twins) is the same on DuckDB and on chdb."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import twin_ledgers

URLS = [
    "/api/overview?period=2025-06",
    "/api/tail?period=2025-06",
    "/api/customers?period=2025-06",
    "/api/customers/WIN?period=2025-06",
    "/api/outcomes?period=2025-06",
    "/api/anomalies",
]


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from tests.fixtures_asymmetric import write_asymmetric

    d = tmp_path_factory.mktemp("dash")
    ev, prices, cust = write_asymmetric(d)
    return twin_ledgers(d, ev, prices, cust)


@pytest.mark.parametrize("url", URLS)
def test_every_api_answer_is_the_same_on_both_engines(twins: tuple[Any, Any], url: str) -> None:
    from starlette.testclient import TestClient

    from tailguard.ui import create_app

    texts = []
    for led in twins:
        with TestClient(create_app(led)) as client:
            r = client.get(url)
            assert r.status_code == 200, r.text
            texts.append(r.text)
    assert texts[0] == texts[1]
    assert len(texts[0]) > 50  # an answer with figures, not an empty page


def test_a_write_invalidates_the_dashboards_cache(twins: tuple[Any, Any], tmp_path: Path) -> None:
    """The dashboard caches per ledger content; a ClickHouse ledger has no segment files, so its
    content version is its rows and latest insert: a new event must show."""
    _duck, ch = twins
    before = ch.content_version()
    ch.append(
        [
            {
                "event_id": "dash-new",
                "kind": "tool_call",
                "ts": "2025-06-03T00:00:00Z",
                "customer_id": "WIN",
                "tool": "lookup",
                "tool_kind": "read",
                "cost_usd": "1",
            }
        ]
    )
    assert ch.content_version() != before
