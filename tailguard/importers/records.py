"""Read another system's export as records, each with the line it came from.

- CSV: one record per row, its line the physical line of the row's start (the header is 1);
- JSONL: one record per line (a line holding a page, ``{"data": [...]}``, gives its items, all
  on that line);
- JSON: a list of records, a page ``{"data": [...]}`` or a list of pages; a JSON document has
  no line per record, so its "line" is the record's ordinal (1-based) in the file.

Money and token fields are read as the file gives them; each source converts them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from tailguard.errors import InputError

Record = dict[str, Any]


def read_records(path: Path) -> Iterator[tuple[int, Record]]:
    """Yield ``(line, record)`` for each record of ``path`` (format from its extension)."""
    name = str(path)
    if not path.exists():
        raise InputError(f"{name}: no such file", [f"{name}:0: <file>: no such file"])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path)
    elif suffix == ".json":
        yield from _json(path)
    else:
        raise InputError(
            f"{name}: cannot tell the format from the name; use .csv, .jsonl or .json",
            [f"{name}:0: <file>: unknown format"],
        )


def _csv(path: Path) -> Iterator[tuple[int, Record]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        line = 2
        for row in reader:
            yield line, row
            line = reader.line_num + 1


def _items(doc: Any) -> list[Any]:
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        return list(doc["data"])
    if isinstance(doc, list):
        out: list[Any] = []
        for item in doc:
            out.extend(_items(item) if isinstance(item, dict) and "data" in item else [item])
        return out
    return [doc]


def _jsonl(path: Path) -> Iterator[tuple[int, Record]]:
    decoder = msgspec.json.Decoder()
    with path.open("rb") as fh:
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                doc = decoder.decode(raw)
            except msgspec.DecodeError as exc:
                yield line, {"__error__": f"not JSON: {exc}"}
                continue
            for item in _items(doc):
                yield line, item if isinstance(item, dict) else {"__error__": "not an object"}


def _json(path: Path) -> Iterator[tuple[int, Record]]:
    name = str(path)
    try:
        doc = msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise InputError(f"{name}: not JSON", [f"{name}:0: <file>: {exc}"]) from None
    for i, item in enumerate(_items(doc), start=1):
        yield i, item if isinstance(item, dict) else {"__error__": "not an object"}
