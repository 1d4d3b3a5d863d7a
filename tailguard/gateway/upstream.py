"""The HTTP client toward the providers, behind one small interface, on httpx or aiohttp.

Why two: httpx is the project's client and what the in-process tests plug into
(``httpx.ASGITransport``), but it spends ~1.7 ms of CPU per proxied call here against ~0.5 ms
for aiohttp (bench/gateway), and on 2 cores that CPU is the gateway's whole throughput budget.
``http_client = "auto"`` (the default) takes aiohttp when it is installed. Both keep one pooled
client for the process's life (keep-alive connections to each provider).

Errors are translated here, at one boundary: ``UpstreamTimeout`` and ``UpstreamError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

# the error tree lives in tailguard.errors; driver errors are translated into these here
from tailguard.errors import UpstreamError, UpstreamTimeout

_DROP_RESP = frozenset(
    {
        b"content-length",
        b"content-encoding",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"date",
        b"server",
    }
)


def _keep(raw: Any) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in raw if k.lower() not in _DROP_RESP]


class Response:
    """One upstream response: status, headers to pass on, and its body read whole or as chunks."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content_type: str

    async def read(self) -> bytes:
        raise NotImplementedError

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _HttpxResponse(Response):
    def __init__(self, r: httpx.Response) -> None:
        self.r = r
        self.status = r.status_code
        self.headers = _keep(r.headers.raw)
        self.content_type = r.headers.get("content-type", "")

    async def read(self) -> bytes:
        try:
            return await self.r.aread()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(str(exc)) from exc

    async def chunks(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        try:
            async for c in self.r.aiter_raw():
                yield c
        except httpx.HTTPError as exc:
            raise UpstreamError(str(exc)) from exc

    async def close(self) -> None:
        await self.r.aclose()


class HttpxClient:
    """Upstream calls on one ``httpx.AsyncClient`` (``transport`` for in-process tests)."""

    def __init__(
        self, *, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.c = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
        )

    async def send(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Response:
        try:
            req = self.c.build_request(method, url, content=body or None, headers=headers)
            return _HttpxResponse(await self.c.send(req, stream=True))
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self.c.aclose()


class _AiohttpResponse(Response):
    def __init__(self, r: Any) -> None:
        self.r = r
        self.status = r.status
        self.headers = _keep(r.raw_headers)
        self.content_type = r.headers.get("Content-Type", "")

    async def read(self) -> bytes:

        import aiohttp

        try:
            return bytes(await self.r.read())
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(str(exc)) from exc

    async def chunks(self) -> AsyncIterator[bytes]:  # type: ignore[override]
        import aiohttp

        try:
            async for c in self.r.content.iter_any():
                yield c
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(str(exc)) from exc

    async def close(self) -> None:
        self.r.release()


class AiohttpClient:
    """Upstream calls on one ``aiohttp.ClientSession`` (no decompression: bytes pass as sent)."""

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.s: Any = None

    def _session(self) -> Any:
        if self.s is None:  # created inside the running loop, as aiohttp requires
            import aiohttp

            self.s = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=60),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=10.0, sock_read=self.timeout_s
                ),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self.s

    async def send(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Response:

        import aiohttp

        hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        try:
            r = await self._session().request(method, url, data=body or None, headers=hdrs)
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from exc
        return _AiohttpResponse(r)

    async def aclose(self) -> None:
        if self.s is not None:
            await self.s.close()
            self.s = None


def make_client(
    kind: str, *, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
) -> HttpxClient | AiohttpClient:
    """``kind``: httpx | aiohttp | auto (aiohttp when installed; httpx with a test transport)."""
    if transport is not None or kind == "httpx":
        return HttpxClient(timeout_s=timeout_s, transport=transport)
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        if kind == "aiohttp":
            from tailguard.errors import ConfigError

            raise ConfigError(
                'gateway.http_client = "aiohttp" needs it: pip install aiohttp'
            ) from None
        return HttpxClient(timeout_s=timeout_s)
    return AiohttpClient(timeout_s=timeout_s)
