"""``tailguard import``: history from the systems a team already runs, into the ledger.

Each source module turns one record of its export into one ``llm_call`` (``convert``), with the
token convention converted at the edge (the ledger's: input includes cache reads and writes,
output includes reasoning), the event id taken from the source's own id (a re-import, or two
overlapping exports, add nothing) and the source's own cost kept as ``reported_cost_usd``
beside tailguard's price. From there the events take ``ingest``'s path: the same checks, the
same pricing, the same all-or-nothing commit (``tailguard.ledger.ingest``).

    records (importers.records) -> convert (one module per source) -> checks (events.sql)
        -> price, dedupe, stage, commit (ledger.ingest)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from tailguard.errors import ArgumentError
from tailguard.events.batch import DEFAULT_BATCH_ROWS, TsWindow
from tailguard.importers import helicone, langfuse, litellm, usage_api
from tailguard.importers.convert import Reader, read_source
from tailguard.importers.mapping import ImportMap
from tailguard.ledger.ingest import IngestResult
from tailguard.ledger.store import Ledger
from tailguard.pricing import PriceBook

__all__ = ["SOURCES", "ImportMap", "ImportResult", "import_files"]

#: source name -> the function that reads one of its files as validated batches
SOURCES: dict[str, Reader] = {
    "litellm": litellm.read,
    "langfuse": partial(read_source, convert=langfuse.convert),
    "helicone": partial(read_source, convert=helicone.convert),
    "openai-usage": partial(
        read_source, convert=usage_api.convert_openai, explode=usage_api.explode
    ),
    "anthropic-usage": partial(
        read_source, convert=usage_api.convert_anthropic, explode=usage_api.explode
    ),
}


@dataclass
class ImportResult:
    """What an import did: the ingest's counts plus the records that were not model calls."""

    ingest: IngestResult
    source: str
    skipped: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, **self.ingest.as_dict(), "skipped": self.skipped}


def import_files(
    source: str,
    paths: Sequence[str | os.PathLike[str]],
    ledger: Ledger | str | os.PathLike[str],
    *,
    mapping: ImportMap | None = None,
    prices: PriceBook | None = None,
    rejects_path: str | os.PathLike[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    window: TsWindow | None = None,
) -> ImportResult:
    """Import ``paths`` (exports of ``source``) into ``ledger``.

    As ``ingest``: without ``rejects_path`` one bad record refuses everything (``InputError``
    listing each as ``file:line: field: reason``) and the ledger is untouched.
    """
    from tailguard.ledger.ingest import ingest

    if source not in SOURCES:
        raise ArgumentError(f"unknown source {source!r}: one of {', '.join(SOURCES)}")
    counts: dict[str, int] = {}
    reader = partial(
        SOURCES[source],
        mp=mapping or ImportMap(),
        batch_rows=batch_rows,
        window=window,
        counts=counts,
    )
    res = ingest(
        paths,
        ledger,
        prices=prices,
        rejects_path=rejects_path,
        batch_rows=batch_rows,
        reader=reader,
    )
    return ImportResult(res, source, counts.get("skipped", 0))
