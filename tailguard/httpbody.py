"""Request bodies read with a bound: the gateway, its ``/v1/events`` route and ``collect`` share it.

A body is read chunk by chunk and given up as soon as it passes the limit, so a client cannot make
a server hold more than ``limit`` bytes of one request; a gzip body is inflated with the same
bound (a small compressed body can expand a thousandfold).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import Any


class BodyTooLarge(Exception):
    """The inflated body passes the limit."""


async def read_body(
    receive: Callable[[], Awaitable[Any]], limit: int, length: bytes | None = None
) -> bytes | None:
    """The ASGI request body, or None as soon as it is known to pass ``limit`` bytes (a
    ``Content-Length`` above it is refused before reading anything)."""
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not msg.get("more_body"):
            return b"".join(parts)


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate a gzip body of at most ``limit`` bytes once inflated.

    Raises ``BodyTooLarge`` past the limit, ``zlib.error`` for bytes that are not gzip and
    ``EOFError`` for a truncated stream (a cut upload must not be read as a shorter one)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = d.decompress(data, limit + 1)
    if len(out) > limit or d.unconsumed_tail:
        raise BodyTooLarge(f"the decompressed body is over {limit} bytes")
    out += d.flush()
    if not d.eof:
        raise EOFError("truncated gzip body")
    return out
