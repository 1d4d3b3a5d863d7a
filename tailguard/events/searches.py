"""Server-side web searches as ledger events: one ``tool_call`` per search.

A provider that runs a web search for the model (Anthropic's ``server_tool_use``
``web_search_requests``) bills it per search, apart from the tokens. tailguard records each as a
``tool_call`` of tool ``web_search`` beside the call that made it, so tool cost, tool calls per
task and the diagnosis's tool fan-out see them. The gateway and ``import anthropic-usage`` both
write them through this one function, so the two sources give the same events for the same call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def web_search_events(
    call_id: str,
    envelope: Mapping[str, Any],
    count: int,
    cost_usd: Any,
    *,
    usage_invalid: bool = False,
) -> list[dict[str, Any]]:
    """``count`` ``tool_call`` events of the call whose event id is ``call_id``: ids
    ``{call_id}:web_search:{i}`` (stable, so a replay or a re-import adds nothing), the call's
    envelope (time, customer, user, feature, task, session), read tools priced at
    ``cost_usd`` each (the search price, ``PriceBook.web_search_usd``; None: the operator's
    ``[units] tool_call_usd``).

    ``usage_invalid``: the call's usage could not be trusted (the gateway records the call
    ``usage_invalid``, unpriced): its searches are counted but carry the same status and no
    cost, so pricing leaves them unpriced like their call, never a search price for a call
    whose cost is unknown.
    """
    return [
        {
            "event_id": f"{call_id}:web_search:{i}",
            "kind": "tool_call",
            **envelope,
            "tool": "web_search",
            "tool_kind": "read",
            "cost_usd": None if usage_invalid else cost_usd,
            **({"status": "usage_invalid"} if usage_invalid else {}),
        }
        for i in range(count)
    ]
