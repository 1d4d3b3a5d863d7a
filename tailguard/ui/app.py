"""The dashboard's ASGI app: six pages, their ``/api`` JSON twins, a CSV, read-only.

Routes (every page's state is in its query string, so a URL pastes into a review document):

    /                       overview          /api/overview
    /tail                   tail              /api/tail
    /customers              customers table   /api/customers   /customers.csv
    /customers/{id}         one customer      /api/customers/{id}   /customers/{id}/renewal
    /outcomes               outcomes          /api/outcomes
    /anomalies              anomalies, guard  /api/anomalies

Each handler calls one function of ``tailguard.ui.data`` (the figures: library calls, the same as
the CLI's) and renders it twice: a Jinja2 template for the page, ``tailguard.cli.output.dumps``
(the CLI's own ``--json`` encoder: exact Decimals) for the twin. Errors: a bad parameter is a 400
naming it and why, an unknown customer or a window with no events a 404, each as a page (or a
JSON ``{"error": ...}`` under ``/api``).

Only GET and HEAD are routed: the dashboard never writes. With a ``token`` (required by
``tailguard ui`` on any address but loopback), every request must carry it: ``Authorization:
Bearer TOKEN``, or ``?token=TOKEN`` once (which sets an HttpOnly cookie for the links that
follow); it is compared with ``hmac.compare_digest``, in constant time.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from contextlib import suppress
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tailguard.errors import ArgumentError, NoDataError, TailguardError
from tailguard.ui import charts
from tailguard.ui import data as d

__all__ = ["create_app", "warm"]

HERE = Path(__file__).parent
COOKIE = "tailguard_ui_token"
#: the band of a status word: its colour on every page
BANDS = {
    "ok": "ok",
    "watch": "watch",
    "act": "act",
    "alert": "act",
    "no_revenue": "none",
    "unknown": "none",
    "no_data": "none",
}


# --- formatting (display only: the figures arrive computed) ------------------------------------


def usd(v: Any) -> str:
    """Money by the project's one rule (``tailguard.money.format_usd``); ``—`` for none."""
    from tailguard.money import format_usd

    return "—" if v is None else format_usd(v)


def pct(v: Any, digits: int = 1, *, ratio: bool = False) -> str:
    """A percentage (``ratio``: a 0–1 share, shown ×100)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    x = float(v) * (100 if ratio else 1)
    return f"{x:,.{digits}f} %"


def num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float | Decimal):
        return f"{float(v):,.{digits}f}"
    return str(v)


def kpi_value(v: Any, unit: str) -> str:
    """A KPI value with its unit (``%``, ``tok``, a count)."""
    if v is None:
        return "—"
    if isinstance(v, dict):
        return ", ".join(f"{k.replace('_', ' ')} {kpi_value(x, unit)}" for k, x in v.items())
    if unit == "%":
        return pct(v)
    if unit == "tokens":
        return f"{float(v):,.0f} tok"
    if unit == "usd":
        return usd(v)
    return num(v)


def _bound(v: Any) -> str:
    x = float(v)
    return f"{x:,.0f}" if abs(x) >= 1000 or x == int(x) else f"{x:,.4g}"


def band_text(b: Any, unit: str = "") -> str:
    """A healthy band as ``low–high unit`` (a band in words as it is)."""
    if isinstance(b, list | tuple) and len(b) == 2:
        u = " %" if unit == "%" else (" tok" if unit == "tokens" else "")
        return f"{_bound(b[0])}–{_bound(b[1])}{u}"
    if isinstance(b, dict):
        return "per tier"
    return "—" if b is None else str(b)


def _floats(xs: list[Any]) -> list[float]:
    return [float(x or 0) for x in xs]


#: how a cost component (an event kind) is named on a chart
KIND_LABELS = {"llm_call": "LLM", "tool_call": "tools", "retrieval": "retrieval"}


def _series(s: dict[str, list[Any]]) -> dict[str, list[float]]:
    """A payload's series as the floats a chart places (display only), kinds named."""
    return {KIND_LABELS.get(k, k): _floats(v) for k, v in s.items()}


def _maybe(xs: list[Any]) -> list[float | None]:
    return [None if x is None else float(x) for x in xs]


def _pct_series(rows: list[dict[str, Any]], key: str) -> list[float | None]:
    """A change (a ratio, -0.1 for -10 %) per row, as percent for a chart."""
    return [None if r.get(key) is None else float(r[key]) * 100 for r in rows]


#: outcome -> band colour: accepted is the good spend, open is unknown yet
_OUTCOME_COLOURS = {"accepted": "#2f7d4f", "open": "#b0b0b0"}


def _outcome_colors(names: list[str]) -> list[str]:
    return [_OUTCOME_COLOURS.get(n, "#b83232" if n != "escalated" else "#d4945c") for n in names]


# --- the app -------------------------------------------------------------------------------------


def create_app(
    ledger: Any,
    *,
    policy: Any = None,
    diagnose_config: Any = None,
    token: str | None = None,
    cache: bool = True,
) -> Starlette:
    """The dashboard over ``ledger`` (a ``Ledger`` or its directory). ``policy``: a loaded guard
    policy (tier caps for the KPIs); ``diagnose_config``: a ``DiagnoseConfig``; ``token``:
    required on every request when given (module docstring); ``cache``: keep page payloads
    between requests, keyed by the ledger's content (``tailguard.ui.data``)."""
    from tailguard.ledger import Ledger

    led = ledger if isinstance(ledger, Ledger) else Ledger(ledger)
    src = d.Source(led, policy=policy, diagnose_config=diagnose_config, cache=cache)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(usd=usd, pct=pct, num=num, kpi_value=kpi_value, band_text=band_text)
    env.globals.update(
        bands=BANDS,
        charts=charts,
        pages=d.PAGES,
        floats=_floats,
        series_f=_series,
        maybe=_maybe,
        pct_series=_pct_series,
        outcome_colors=_outcome_colors,
    )

    def partial(request: Request) -> bool:
        """An htmx swap asks for the fragment (``base.html``), except a history restore (the
        browser's back button on a page htmx no longer holds), which needs the whole page."""
        h = request.headers
        return h.get("hx-request") == "true" and h.get("hx-history-restore-request") != "true"

    def respond(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
        res = templates.TemplateResponse(
            request, name, {**ctx, "partial": partial(request)}, status_code=status
        )
        res.headers["Vary"] = "HX-Request"  # a cache must not give a fragment for a page
        return res

    def page(name: str, request: Request, payload: dict[str, Any], **extra: Any) -> Response:
        params = dict(request.query_params)
        params.pop("token", None)

        def url(path: str | None = None, **changes: Any) -> str:
            """This page (or ``path``) with the current state, ``changes`` applied."""
            merged = {**params, **changes}
            q = {k: v for k, v in merged.items() if v not in (None, "")}
            return (path or request.url.path) + ("?" + urlencode(q) if q else "")

        def keep(path: str) -> str:
            """A link to another page that keeps the window (period, from, to)."""
            q = {k: params[k] for k in ("period", "from", "to") if params.get(k)}
            return path + ("?" + urlencode(q) if q else "")

        ctx = {
            "request": request,
            "p": payload,
            "page": name,
            "params": params,
            "url": url,
            "keep": keep,
            "api": url("/api" + (request.url.path if request.url.path != "/" else "/overview")),
            **extra,
        }
        return respond(request, f"{name}.html", ctx)

    def failure(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return Response(_json({"error": message}), status, media_type="application/json")
        return respond(
            request,
            "error.html",
            {"request": request, "status": status, "message": message, "page": "", "params": {}},
            status,
        )

    def guarded(
        fn: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """The handler with the dashboard's errors turned into 400 / 404 pages."""

        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except ArgumentError as exc:
                return failure(request, 400, str(exc))
            except NoDataError as exc:
                return failure(request, 404, str(exc))
            except TailguardError as exc:
                return failure(request, 400, str(exc))

        return handler

    async def run(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """``fn(*args)`` in a worker thread (the engine blocks), through the payload cache."""
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(src.cached, fn.__name__, args[1:], lambda: fn(*args))

    def _json(obj: Any) -> str:
        from tailguard.cli.output import dumps

        return dumps(obj) + "\n"

    def api(obj: Any) -> Response:
        return Response(_json(obj), media_type="application/json")

    # pages --------------------------------------------------------------------------------------

    async def overview(request: Request) -> Response:
        q = d.Query.parse(request.query_params)
        return page("overview", request, await run(d.overview_page, src, q))

    async def overview_api(request: Request) -> Response:
        q = d.Query.parse(request.query_params)
        return api(await run(d.overview_page, src, q))

    async def tail(request: Request) -> Response:
        q = d.Query.parse(request.query_params)
        return page("tail", request, await run(d.tail_page, src, q), q=q)

    async def tail_api(request: Request) -> Response:
        return api(await run(d.tail_page, src, d.Query.parse(request.query_params)))

    def _page_query(request: Request) -> d.Query:
        q = d.Query.parse(request.query_params)
        if q.page is None and q.limit is None:  # the page shows a page; the API every row
            q = d.Query(**{**q.__dict__, "page": 1})
        return q

    async def customers(request: Request) -> Response:
        q = _page_query(request)
        from tailguard.vocabulary import SHAPES

        res = await run(d.customers_page, src, q)
        return page("customers", request, res, q=q, shapes=SHAPES)

    async def customers_api(request: Request) -> Response:
        res = await run(d.customers_page, src, d.Query.parse(request.query_params))
        return api(res["rows"])

    async def customers_csv(request: Request) -> Response:
        import csv
        import io

        from tailguard.analytics.customers import CUSTOMER_FIELDS

        res = await run(d.customers_page, src, _page_query(request))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(CUSTOMER_FIELDS), lineterminator="\n")
        w.writeheader()
        for r in res["rows"]:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CUSTOMER_FIELDS})
        return PlainTextResponse(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
        )

    async def customer(request: Request) -> Response:
        cid = request.path_params["cid"]
        q = d.Query.parse(request.query_params)
        return page("customer", request, await run(d.customer_page, src, cid, q), cid=cid)

    async def customer_api(request: Request) -> Response:
        cid = request.path_params["cid"]
        return api(await run(d.customer_page, src, cid, d.Query.parse(request.query_params)))

    async def renewal_page(request: Request) -> Response:
        from tailguard.analytics.renewal import html, renewal

        cid = request.path_params["cid"]
        q = d.Query.parse(request.query_params)

        def one() -> str:
            with src.open() as ctx:
                if not d._known(ctx, cid):
                    raise d.unknown_customer(cid)
                return html(renewal(ctx, cid, as_of=q.as_of))

        from starlette.concurrency import run_in_threadpool

        return HTMLResponse(await run_in_threadpool(one))

    async def outcomes(request: Request) -> Response:
        q = d.Query.parse(request.query_params)
        return page("outcomes", request, await run(d.outcomes_page, src, q))

    async def outcomes_api(request: Request) -> Response:
        return api(await run(d.outcomes_page, src, d.Query.parse(request.query_params)))

    async def anomalies(request: Request) -> Response:
        q = d.Query.parse(request.query_params)
        return page("anomalies", request, await run(d.anomalies_page, src, q), q=q)

    async def anomalies_api(request: Request) -> Response:
        return api(await run(d.anomalies_page, src, d.Query.parse(request.query_params)))

    get = ["GET", "HEAD"]
    routes = [
        Route("/", guarded(overview), methods=get),
        Route("/tail", guarded(tail), methods=get),
        Route("/customers", guarded(customers), methods=get),
        Route("/customers.csv", guarded(customers_csv), methods=get),
        Route("/customers/{cid}", guarded(customer), methods=get),
        Route("/customers/{cid}/renewal", guarded(renewal_page), methods=get),
        Route("/outcomes", guarded(outcomes), methods=get),
        Route("/anomalies", guarded(anomalies), methods=get),
        Route("/api/overview", guarded(overview_api), methods=get),
        Route("/api/tail", guarded(tail_api), methods=get),
        Route("/api/customers", guarded(customers_api), methods=get),
        Route("/api/customers/{cid}", guarded(customer_api), methods=get),
        Route("/api/outcomes", guarded(outcomes_api), methods=get),
        Route("/api/anomalies", guarded(anomalies_api), methods=get),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.source = src  # what ``warm`` fills

    async def not_found(request: Request, exc: Exception) -> Response:
        return failure(request, 404, f"no page at {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return failure(request, 405, "the dashboard is read-only: GET only")

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    if token:
        app.add_middleware(_TokenGate, token=token)
    return app


def warm(app: Starlette, *, watch: float | None = None, stop: Any = None) -> None:
    """Compute the pages a first visitor opens (the overview, the customers table over every
    day, the diagnosis's population pass every customer page needs) into the app's caches, so
    they do not wait for the first aggregation: ``tailguard ui`` runs this in a thread while the
    server starts. With ``watch`` (seconds), keep doing it each
    time the ledger's content changes (an ingest, a compaction: ``Source.version``), checked
    every ``watch`` seconds until ``stop`` (a ``threading.Event``) is set: the default views
    are computed after an ingest rather than on the next visitor's request. Errors are left
    for the page to show."""
    import threading

    src: d.Source = app.state.source
    stop = stop or threading.Event()
    seen = None
    while True:
        version = src.version()
        if version != seen:
            for fn in (d.overview_page, d.customers_page):
                q = d.Query(page=1) if fn is d.customers_page else d.Query()
                with suppress(TailguardError):
                    src.cached(fn.__name__, (q,), lambda fn=fn, q=q: fn(src, q))
            # the diagnosis's population pass over every day, which a first customer page
            # would otherwise pay for (about 3.5 CPU s of its 5.2 at 10M events)
            with suppress(TailguardError), src.open() as ctx:
                d.diagnosis_population(src, ctx, d.Query().window())
            seen = version
        if watch is None or stop.wait(watch):
            return


class _TokenGate:
    """ASGI middleware: every HTTP request must carry the token (``create_app``'s docstring)."""

    def __init__(self, app: Any, *, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        via_query = request.query_params.get("token")
        if self._ok(bearer) or self._ok(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        if self._ok(via_query):

            async def send_cookie(message: Any) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{COOKIE}={via_query}; HttpOnly; SameSite=Strict; Path=/"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            await self.app(scope, receive, send_cookie)
            return
        res = PlainTextResponse(
            "401: this dashboard needs its token (Authorization: Bearer TOKEN, or ?token=TOKEN)",
            status_code=401,
        )
        await res(scope, receive, send)
