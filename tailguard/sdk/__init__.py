"""The call-site SDK: attribution where the call is made, recording that never gets in the way.

::

    tg = tailguard.connect(ledger="./tailguard-data")
    client = tg.instrument(openai.OpenAI())
    with tg.task(customer="acme", feature="support") as task:
        client.chat.completions.create(...)
        task.outcome("accepted")

Modules, in the order an event flows: ``scope`` (the task in a context variable),
``instrument`` (a tap on the client's HTTP transport), ``recorder`` (bounded queue, flusher
thread), ``sinks`` (write-ahead log of a local ledger, or a gateway's ``/v1/events``),
``client`` (``connect`` and the handle). See ``docs/sdk.md``.
"""

from __future__ import annotations

from tailguard.sdk.client import BudgetExceeded, Tailguard, connect
from tailguard.sdk.scope import UNATTRIBUTED, Task, current_task

__all__ = ["UNATTRIBUTED", "BudgetExceeded", "Tailguard", "Task", "connect", "current_task"]
