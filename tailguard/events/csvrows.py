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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

from tailguard.errors import InputError

_BOM = "\ufeff"


class CsvRow(NamedTuple):
    """One data row: its values by column, or the problem that refused it (a tuple: one is
    built per row, and a tuple is the cheapest object to build)."""

    line: int  # the physical line the row starts on (the header is line 1)
    values: dict[str, str] | None
    field: str = ""
    reason: str = ""
    raw: str = ""  # the offending text, for a refused row


class _Cursor:
    """Where the reading stands: the byte offset and number of the last line handed out, and
    the lines that were not UTF-8 (number -> "0xff at byte 12")."""

    __slots__ = ("bad", "line", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.line = 0
        self.bad: dict[int, str] = {}


def _lines(fh: IO[bytes], at: _Cursor) -> Iterator[str]:
    """The lines of ``fh`` from its position, decoded one by one, ``at`` kept up to date.

    A line that is not UTF-8 is decoded with ``surrogateescape`` (each bad byte becomes a
    lone surrogate, so the row still parses and the column holding it can be named).
    """
    for data in fh:
        at.offset += len(data)
        at.line += 1
        try:
            yield data.decode("utf-8")
        except UnicodeDecodeError as exc:
            at.bad[at.line] = f"0x{data[exc.start : exc.start + 1].hex()} at byte {exc.start}"
            yield data.decode("utf-8", "surrogateescape")


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
    at = _Cursor()
    with fh:  # the header only: the rows are read by the iterator, from a file of its own
        try:
            header = next(csv.reader(_lines(fh, at), strict=True), [])
        except csv.Error as exc:
            raise InputError(f"{name}: unreadable header", [f"{name}:1: <header>: {exc}"]) from exc
    if at.bad:
        n, byte = min(at.bad.items())
        raise InputError(
            f"{name}: the header is not UTF-8 text",
            [f"{name}:{n}: <header>: not UTF-8 text ({byte})"],
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
    return header, _rows(p, at, header)


def _rows(path: Path, at: _Cursor, header: list[str]) -> Iterator[CsvRow]:
    """The data rows after the header (which ends where ``at`` stands).

    A row that cannot stand (broken quoting, or a multi-line row of the wrong width) is
    refused at its first line, and reading starts again on the line after it: the file is
    sought back to that line, so nothing after a broken quote is lost.
    """
    width = len(header)
    with path.open("rb") as fh:
        fh.seek(at.offset)
        while True:
            reader = csv.reader(_lines(fh, at), strict=True)
            start_line, start_offset = at.line + 1, at.offset
            restart = False
            while not restart:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    why = f"a quote is not closed, or text follows a closing quote ({exc})"
                    yield CsvRow(start_line, None, "<row>", why, _line_at(fh, start_offset))
                    restart = True
                    continue
                end_line = at.line
                if not values:  # a blank line
                    pass
                elif len(values) != width:
                    reason = f"{len(values)} fields where the header has {width}"
                    if end_line > start_line:
                        reason += (
                            f" (a quote opened on line {start_line} runs to line {end_line}:"
                            " unclosed?)"
                        )
                        restart = True
                    yield CsvRow(start_line, None, "<row>", reason, _line_at(fh, start_offset))
                elif at.bad and (
                    bad := [n for n in range(start_line, end_line + 1) if n in at.bad]
                ):
                    col = next(
                        (h for h, v in zip(header, values, strict=True) if _has_bad_byte(v)),
                        "<row>",
                    )
                    why = f"not UTF-8 text ({at.bad[bad[0]]})"
                    yield CsvRow(bad[0], None, col, why, _printable(",".join(values)))
                else:
                    yield CsvRow(start_line, dict(zip(header, values, strict=True)))
                if not restart:
                    start_line, start_offset = at.line + 1, at.offset
            # start again on the line after the refused row's first
            fh.seek(start_offset)
            first = fh.readline()
            at.offset, at.line = start_offset + len(first), start_line


def _line_at(fh: IO[bytes], offset: int) -> str:
    """The text of the line starting at byte ``offset`` (for a refused row's ``raw``)."""
    here = fh.tell()
    fh.seek(offset)
    text = fh.readline()
    fh.seek(here)
    return _printable(text.decode("utf-8", "surrogateescape"))


def _has_bad_byte(value: str) -> bool:
    """True when ``value`` holds a byte that was not UTF-8 (decoded as a lone surrogate)."""
    return any("\udc80" <= ch <= "\udcff" for ch in value)
