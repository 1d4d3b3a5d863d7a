"""``tailguard.connect``: exactly one destination; the handle's counters; the package root."""

from __future__ import annotations

from pathlib import Path

import pytest

import tailguard
from tailguard.errors import ConfigError


def test_exactly_one_destination(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        tailguard.connect()
    with pytest.raises(ConfigError, match="exactly one"):
        tailguard.connect(ledger=tmp_path / "L", endpoint="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="http"):
        tailguard.connect(endpoint="127.0.0.1:9")


def test_stats_and_close_are_idempotent(tmp_path: Path) -> None:
    tg = tailguard.connect(ledger=tmp_path / "L", default_customer="house")
    with tg.task(feature="batch-job") as t:  # no customer: the default one
        t.retrieval(queries=2, reranks=1)
    tg.flush()
    s = tg.stats()
    assert (s["sent"], s["dropped"], s["unattributed"], s["queued"], s["durable"]) == (
        1,
        0,
        0,
        0,
        1,
    )
    tg.close()
    tg.close()
    # after close nothing is accepted, and the loss is counted, never raised
    with tg.task(customer="x") as t:
        t.outcome("accepted")
    assert tg.stats()["dropped"] == 1
