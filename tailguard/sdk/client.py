"""``tailguard.connect(...)``: the SDK's entry point, and the ``Tailguard`` handle it returns.

::

    import openai, tailguard
    tg = tailguard.connect(ledger="./tailguard-data")  # or endpoint=URL, key="tg-..."
    client = tg.instrument(openai.OpenAI())
    with tg.task(customer="acme", user="u-17", feature="support", workload="agent") as task:
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])   # one llm_call
        task.tool("crm_lookup", kind="read")
        task.outcome("accepted")
    tg.flush()                                             # also at interpreter exit

One handle owns one recorder (queue + flusher thread) and one sink. ``stats()`` says what
happened to every event: sent, dropped (queue full), unattributed, durable, folded...
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from typing import Any, TypeVar

from tailguard.errors import ConfigError, GuardError
from tailguard.sdk.recorder import Recorder, Sink
from tailguard.sdk.scope import Task

log = logging.getLogger("tailguard.sdk")
C = TypeVar("C")


class BudgetExceeded(GuardError):
    """The guard denied a call made through an instrumented client (``policy=``).

    ``decision`` is the guard's ``Decision`` (its ``rule``, ``message`` and ``retry_after``).
    """

    def __init__(self, message: str, decision: Any = None) -> None:
        super().__init__(message)
        self.decision = decision


class Tailguard:
    """A connected SDK: instrument clients, open task scopes, flush. Made by ``connect``."""

    def __init__(
        self,
        sink: Sink,
        *,
        default_customer: str | None = None,
        max_queue: int = 10_000,
        flush_interval_s: float = 0.5,
        prices: str | os.PathLike[str] | None = None,
    ) -> None:
        self.recorder = Recorder(
            sink,
            default_customer=default_customer,
            max_queue=max_queue,
            flush_interval_s=flush_interval_s,
            prices=prices,
        )
        self._closed = False
        # at exit: flush what is queued (a weak reference, so a handle can still be collected)
        ref = weakref.ref(self)
        self._atexit = lambda: (h := ref()) is not None and h.close()
        atexit.register(self._atexit)

    def instrument(
        self,
        client: C,
        *,
        provider: str | None = None,
        policy: str | os.PathLike[str] | None = None,
        guard: Any = None,
        prices: str | os.PathLike[str] | None = None,
        default_max_output_tokens: int = 4096,
    ) -> C:
        """Record every LLM call ``client`` makes (OpenAI / Anthropic, sync or async).

        The client is changed in place and returned. ``provider`` names the price list to use
        when the client points somewhere else than its vendor (default: ``openai`` or
        ``anthropic`` after the SDK). ``policy`` (a policy file) or ``guard`` (a ``Guard``,
        e.g. on a shared Redis store; give it ``sink=tg.guard_sink``) enforce budgets before
        each call: see ``tailguard.sdk.guard``. The guard reserves and settles at ``prices``
        (a price file), else at the price file this handle's ledger charges with
        (``connect(prices=...)``), so budgets count what the ledger records.
        """
        from tailguard.sdk.instrument import instrument

        cg = None
        if policy is not None or guard is not None:
            from tailguard.sdk.guard import CallGuard

            cg = CallGuard(
                self.recorder,
                policy=policy,
                guard=guard,
                prices=prices,
                default_max_output_tokens=default_max_output_tokens,
            )
        return instrument(client, self.recorder, provider=provider, guard=cg)  # type: ignore[no-any-return]

    def guard_sink(self, events: list[dict[str, Any]]) -> None:
        """A ``Guard(sink=...)`` that records the guard's events with the calls."""
        self.recorder.put(("raw", events))

    def task(
        self,
        *,
        customer: str | None = None,
        user: str | None = None,
        feature: str | None = None,
        workload: str | None = None,
        task_id: str | None = None,
        session: str | None = None,
    ) -> Task:
        """A task scope: ``with tg.task(customer=...) as task:`` (or ``async with``)."""
        return Task(
            self.recorder,
            customer=customer,
            user=user,
            feature=feature,
            workload=workload,
            task_id=task_id,
            session=session,
        )

    def flush(self, timeout: float | None = 30.0) -> None:
        """Send everything recorded so far and wait until the sink holds it durably."""
        self.recorder.flush(timeout)

    def stats(self) -> dict[str, int]:
        """Counters: ``sent``, ``dropped``, ``unattributed``, ``queued`` and the sink's own."""
        return self.recorder.stats()

    def close(self) -> None:
        """Flush and stop (idempotent; runs at interpreter exit too)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._atexit)
        self.recorder.close()

    def __enter__(self) -> Tailguard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    ledger: str | os.PathLike[str] | None = None,
    *,
    endpoint: str | None = None,
    key: str | None = None,
    default_customer: str | None = None,
    prices: str | os.PathLike[str] | None = None,
    durability: str = "fsync",
    max_queue: int = 10_000,
    flush_interval_s: float = 0.5,
) -> Tailguard:
    """Connect the SDK to a local ledger directory or to a gateway (exactly one of the two).

    ``ledger``: events go through the ledger's write-ahead log (``durability`` fsync by
    default) and are priced with ``prices`` (an override file) on top of genai-prices.
    ``endpoint`` + ``key``: events are posted to the gateway's ``/v1/events``; ``key`` defaults
    to ``TAILGUARD_INGEST_KEY``. ``default_customer`` attributes calls made outside any task
    (else they are recorded under ``unattributed`` and counted).
    """
    if (ledger is None) == (endpoint is None):
        raise ConfigError("connect() needs exactly one of ledger=DIR or endpoint=URL")
    sink: Sink
    if ledger is not None:
        from tailguard.sdk.sinks import LedgerSink

        sink = LedgerSink(ledger, prices=prices, durability=durability)
    else:
        from tailguard.sdk.sinks import HttpSink

        assert endpoint is not None
        sink = HttpSink(endpoint, key or os.environ.get("TAILGUARD_INGEST_KEY"))
    return Tailguard(
        sink,
        default_customer=default_customer,
        max_queue=max_queue,
        flush_interval_s=flush_interval_s,
        prices=prices,
    )
