"""The bounded body reader shared by the gateway, its events route and ``collect``."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from tailguard.httpbody import BodyTooLarge, gunzip, read_body


def _receiver(chunks: list[bytes]):
    msgs = [{"body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return msgs.pop(0)

    return receive, msgs


def test_reads_every_chunk_up_to_the_limit() -> None:
    receive, _ = _receiver([b"ab", b"cd", b"e"])
    assert asyncio.run(read_body(receive, 5)) == b"abcde"


def test_gives_up_at_the_first_chunk_past_the_limit() -> None:
    receive, left = _receiver([b"ab", b"cd", b"ef", b"gh"])
    assert asyncio.run(read_body(receive, 5)) is None
    assert len(left) == 1  # the fourth chunk was never read


def test_content_length_over_the_limit_reads_nothing() -> None:
    receive, left = _receiver([b"abcdef"])
    assert asyncio.run(read_body(receive, 5, b"6")) is None
    assert len(left) == 1


def test_gunzip_bounds_and_truncation() -> None:
    data = b"x" * 1000
    assert gunzip(gzip.compress(data), 1000) == data
    with pytest.raises(BodyTooLarge):
        gunzip(gzip.compress(data), 999)
    with pytest.raises(EOFError):  # a cut upload is not a shorter body
        gunzip(gzip.compress(data)[:-8], 1000)
    with pytest.raises(zlib.error):
        gunzip(b"not gzip at all", 1000)
