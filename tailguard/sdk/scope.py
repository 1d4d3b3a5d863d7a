"""Who a call is for: the task scope, held in a ``contextvars.ContextVar``.

``with tg.task(customer="acme", user="u-17", feature="support") as task:`` makes ``task`` the
current scope until the block ends. Every instrumented call made inside it, and every
``task.tool(...)``, ``task.retrieval(...)``, ``task.escalate(...)`` and ``task.outcome(...)``,
carries its customer, user, feature, workload, task and session.

Why a context variable: it is what Python itself propagates to the places a call can happen.

- **nested tasks**: an inner ``tg.task(...)`` is a task of its own (its own ``task_id``) and
  inherits every attribute it does not set from the enclosing one; leaving it restores the
  enclosing task;
- **asyncio**: each ``asyncio.Task`` runs in a copy of the context current when it was created,
  so tasks created inside the block see its customer, and two concurrent ``async with
  tg.task(...)`` blocks never see each other's;
- **threads**: a new thread starts with an *empty* context (Python does not copy it). Run the
  thread's work in a copy of the caller's context::

      ctx = contextvars.copy_context()
      threading.Thread(target=ctx.run, args=(work,)).start()
      # or, with a pool: pool.submit(contextvars.copy_context().run, work)

  (``asyncio.to_thread`` does this for you; ``loop.run_in_executor`` does not).

A call made outside any task is recorded under ``connect(default_customer=...)``, or under the
explicit customer ``UNATTRIBUTED`` and counted in ``tg.stats()["unattributed"]``: never dropped.

Recording never raises into the application: the methods validate their arguments (a wrong
``outcome`` or ``kind`` is a programming error and raises ``ValueError`` at once) and then only
queue the event.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tailguard.errors import ArgumentError
from tailguard.vocabulary import OUTCOMES, WORKLOADS

if TYPE_CHECKING:
    from types import TracebackType

    from tailguard.sdk.recorder import Recorder

#: the customer of an event nobody attributed (no task, no default customer): explicit, counted
UNATTRIBUTED = "unattributed"

_current: contextvars.ContextVar[Task | None] = contextvars.ContextVar(
    "tailguard_task", default=None
)


def current_task() -> Task | None:
    """The task scope of the calling context (``None`` outside every ``tg.task(...)``)."""
    return _current.get()


class Task:
    """One unit of work a customer pays for; a context manager (sync and async).

    Attributes not given are inherited from the task current when the ``Task`` was created.
    """

    __slots__ = (
        "_recorder",
        "_tokens",
        "customer",
        "feature",
        "session",
        "task_id",
        "user",
        "workload",
    )

    def __init__(
        self,
        recorder: Recorder,
        *,
        customer: str | None = None,
        user: str | None = None,
        feature: str | None = None,
        workload: str | None = None,
        task_id: str | None = None,
        session: str | None = None,
    ) -> None:
        parent = _current.get()
        if workload is not None and workload not in WORKLOADS:
            raise ArgumentError(
                "workload", f"workload must be one of {', '.join(WORKLOADS)}, got {workload!r}"
            )
        self._recorder = recorder
        self._tokens: list[contextvars.Token[Task | None]] = []
        self.customer = customer if customer is not None else (parent and parent.customer)
        self.user = user if user is not None else (parent and parent.user)
        self.feature = feature if feature is not None else (parent and parent.feature)
        self.workload = workload if workload is not None else (parent and parent.workload)
        self.session = session if session is not None else (parent and parent.session)
        self.task_id = task_id if task_id is not None else "task-" + uuid.uuid4().hex

    def __repr__(self) -> str:
        return f"<Task {self.task_id} customer={self.customer!r} feature={self.feature!r}>"

    # --- scope ---------------------------------------------------------------------------------

    def __enter__(self) -> Task:
        self._tokens.append(_current.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> Task:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # --- what happens inside a task ------------------------------------------------------------

    def tool(
        self,
        name: str,
        *,
        kind: str = "read",
        status: str = "ok",
        latency_ms: float | None = None,
        cost_usd: Decimal | str | None = None,
    ) -> None:
        """A tool call (``kind`` read or write; ``status`` ok or error)."""
        if kind not in ("read", "write"):
            raise ArgumentError("kind", f"tool kind must be 'read' or 'write', got {kind!r}")
        if status not in ("ok", "error"):
            raise ArgumentError("status", f"tool status must be 'ok' or 'error', got {status!r}")
        fields: dict[str, Any] = {"tool": name, "tool_kind": kind, "status": status}
        if latency_ms is not None:
            fields["latency_ms"] = latency_ms
        self._emit("tool_call", fields, cost_usd)

    def retrieval(
        self, *, queries: int = 1, reranks: int = 0, cost_usd: Decimal | str | None = None
    ) -> None:
        """A retrieval step: ``queries`` vector/keyword queries and ``reranks`` rerank calls."""
        if queries < 0 or reranks < 0:
            raise ArgumentError("queries", "queries and reranks must be >= 0")
        self._emit("retrieval", {"queries": queries, "reranks": reranks}, cost_usd)

    def escalate(self, *, minutes: float, cost_usd: Decimal | str | None = None) -> None:
        """A human escalation of ``minutes`` of staff time."""
        if minutes < 0:
            raise ArgumentError("minutes", "minutes must be >= 0")
        self._emit("escalation", {"minutes": minutes}, cost_usd)

    def outcome(self, outcome: str) -> None:
        """How the task ended: accepted, rejected, abandoned, timed_out, tool_error, escalated."""
        if outcome not in OUTCOMES:
            raise ArgumentError(
                "outcome", f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}"
            )
        self._emit("task_outcome", {"outcome": outcome}, None)

    def _emit(self, kind: str, fields: dict[str, Any], cost: Decimal | str | None) -> None:
        if cost is not None:
            fields["cost_usd"] = str(Decimal(cost))  # exact: a string, never a float
        self._recorder.put(("event", self, time.time(), kind, fields))
