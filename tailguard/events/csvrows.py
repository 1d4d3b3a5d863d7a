"""CSV rows that never end a read with a traceback: each bad row is named and skipped.

Python's ``csv`` module stops a whole file at the first undecodable byte or broken quote,
and ``DictReader`` hands a ragged row over as a dict holding lists and ``None``. Event and
customer files come from exports of other systems, so one bad row is common and must cost
that row only. ``csv_rows`` reads the file as bytes, decodes each physical line on its own,
parses with the ``csv`` module in strict mode, and turns every problem into a ``CsvRow``
naming the line the row starts on and the field at fault:

- a line that is not UTF-8: the column holding the bad byte (the byte is shown);
- a row with more or fewer fields than the header: ``<row>``, with both counts;
- a quote that is never closed (or text after a closing quote): ``<row>``; reading resumes
  at the next physical line, so the rows after it are not swallowed into one field.

A quoted field may span lines (CSV allows it) as long as the row it ends comes out with as
many fields as the header; a multi-line row that does not is read as an unclosed quote.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tailguard.errors import InputError

_BOM = "\ufeff"


@dataclass(frozen=True)
class CsvRow:
    """One data row: its values by column, or the problem that refused it."""

    line: int  # the physical line the row starts on (the header is line 1)
    values: dict[str, str] | None
    field: str = ""
    reason: str = ""
    raw: str = ""  # the offending text, for a refused row


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    bad_byte: str = ""  # "0xff at byte 12" when the line is not UTF-8


def _decoded(fh: IO[bytes]) -> Iterator[_Line]:
    for n, data in enumerate(fh, start=1):
        try:
            yield _Line(n, data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            byte = data[exc.start : exc.start + 1].hex()
            yield _Line(n, data.decode("utf-8", "surrogateescape"), f"0x{byte} at byte {exc.start}")


class _Feed:
    """The lines handed to ``csv.reader``, remembering those the current row took.

    ``replay`` puts lines back in front (to resume after a row that swallowed them).
    """

    def __init__(self, lines: Iterator[_Line]) -> None:
        self._lines = lines
        self._replay: deque[_Line] = deque()
        self.taken: list[_Line] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = self._replay.popleft() if self._replay else next(self._lines)
        self.taken.append(line)
        return line.text

    def replay(self, lines: list[_Line]) -> None:
        self._replay.extendleft(reversed(lines))


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").rstrip("\r\n")


def csv_rows(path: str | os.PathLike[str]) -> tuple[list[str], Iterator[CsvRow]]:
    """The header of the CSV file ``path`` and an iterator over its data rows.

    Raises ``InputError`` when the file is missing or its header is unreadable (not UTF-8,
    broken quoting, a column named twice); every later problem is a ``CsvRow`` with
    ``values`` None.
    """
    p = Path(path)
    name = str(p)
    try:
        fh = p.open("rb")
    except FileNotFoundError:
        raise InputError(f"{name}: no such file", [f"{name}:0: <file>: no such file"]) from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read", [f"{name}:0: <file>: {exc}"]) from exc
    with fh:  # the header only: the rows are read by the iterator, from a file of its own
        feed = _Feed(_decoded(fh))
        try:
            header = next(csv.reader(feed, strict=True), [])
        except csv.Error as exc:
            raise InputError(f"{name}: unreadable header", [f"{name}:1: <header>: {exc}"]) from exc
    bad = [ln for ln in feed.taken if ln.bad_byte]
    if bad:
        raise InputError(
            f"{name}: the header is not UTF-8 text",
            [f"{name}:{bad[0].number}: <header>: not UTF-8 text ({bad[0].bad_byte})"],
        )
    if header and header[0].startswith(_BOM):
        header[0] = header[0][len(_BOM) :]
    header = [h.strip() for h in header]
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise InputError(
            f"{name}: a column is named twice",
            [f"{name}:1: {h}: column named twice in the header" for h in twice],
        )
    return header, _rows(p, len(feed.taken), header)


def _rows(path: Path, header_lines: int, header: list[str]) -> Iterator[CsvRow]:
    width = len(header)
    with path.open("rb") as fh:
        lines = _decoded(fh)
        for _ in range(header_lines):
            next(lines, None)
        feed = _Feed(lines)
        reader = csv.reader(feed, strict=True)
        while True:
            feed.taken = []
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                taken = feed.taken
                if not taken:
                    return
                why = f"a quote is not closed, or text follows a closing quote ({exc})"
                yield CsvRow(taken[0].number, None, "<row>", why, _printable(taken[0].text))
                feed.replay(taken[1:])  # resume on the line after the row's first
                reader = csv.reader(feed, strict=True)
                continue
            taken = feed.taken
            if not values:  # a blank line
                continue
            first = taken[0].number
            if len(values) != width:
                reason = f"{len(values)} fields where the header has {width}"
                if len(taken) > 1:
                    reason += (
                        f" (a quote opened on line {first} runs to line {taken[-1].number}:"
                        " unclosed?)"
                    )
                    feed.replay(taken[1:])
                    reader = csv.reader(feed, strict=True)
                yield CsvRow(first, None, "<row>", reason, _printable(taken[0].text))
                continue
            bad = next((ln for ln in taken if ln.bad_byte), None)
            if bad is not None:
                col = next(
                    (h for h, v in zip(header, values, strict=True) if _has_bad_byte(v)),
                    "<row>",
                )
                raw = "\n".join(_printable(ln.text) for ln in taken)
                yield CsvRow(bad.number, None, col, f"not UTF-8 text ({bad.bad_byte})", raw)
                continue
            yield CsvRow(first, dict(zip(header, values, strict=True)))


def _has_bad_byte(value: str) -> bool:
    """True when ``value`` holds a byte that was not UTF-8 (decoded as a lone surrogate)."""
    return any("\udc80" <= ch <= "\udcff" for ch in value)
