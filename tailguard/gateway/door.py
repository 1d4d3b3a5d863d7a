"""What the gateway checks at the door, before any upstream call: every value it will record or
reserve on is bounded here, so a request is either refused alone (4xx, in the provider's error
shape) or recorded whole.

Why at the door: the gateway answers the client before its event is folded into the ledger. A
value the ledger would refuse (an attempt above ``int32``, an empty or 600-character model) must
be refused *before* the call is made, or the client gets a 200 whose spend never reaches the
ledger. The bounds are the ledger's own (``tailguard.events.schema``): ``Id`` is 1..512
characters, ``attempt`` is 1..2^31-1.

A number that reaches the guard is bounded too: ``max_tokens`` above ``MAX_OUTPUT_TOKENS`` would
make the reservation an absurd dollar amount (1e29 tokens is a ``decimal.InvalidOperation``) and,
in the shared store, a number the Redis script cannot serialize: that one request fails with a
400, the store and every other customer are untouched.
"""

from __future__ import annotations

from typing import Any

#: the ledger's ``attempt`` column is int32 (``tailguard.events.schema``)
MAX_ATTEMPT = 2**31 - 1
#: the ledger's ``Id`` bound on ``model`` (characters)
MAX_MODEL_CHARS = 512
#: the largest ``max_tokens`` the gateway reserves on: no provider offers an output window near
#: it (the largest today are 128k-1M tokens), and priced at $1,000 per million tokens it is
#: $2.1M, well inside the ledger's money bound (1e9 USD)
MAX_OUTPUT_TOKENS = 2**31 - 1
#: OpenAI chat's ``n`` (completions per request) ranges over 1..128
MAX_CHOICES = 128
#: request fields that cap the output, in the order the gateway reads them
OUTPUT_CAP_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


class Refused(Exception):
    """A request the gateway answers itself with ``status`` (4xx) and ``message``; it never
    reaches the provider and nothing is recorded (nothing was spent)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def attempt(value: bytes | None) -> int:
    """``X-Tailguard-Attempt``: absent is 1; else ASCII digits giving 1..``MAX_ATTEMPT``.

    ``str.isdigit`` is not the test: ``"²"`` is a digit to it and not to ``int``; and the length
    is checked before ``int`` so a 5,000-digit header costs nothing.
    """
    if value is None or value == b"":
        return 1
    v = value.strip()
    if not (0 < len(v) <= 10 and v.isascii() and v.isdigit()):
        raise Refused(400, f"X-Tailguard-Attempt must be an integer from 1 to {MAX_ATTEMPT}.")
    n = int(v)
    if not 1 <= n <= MAX_ATTEMPT:
        raise Refused(400, f"X-Tailguard-Attempt must be an integer from 1 to {MAX_ATTEMPT}.")
    return n


def model(body: dict[str, Any]) -> str:
    """The request's ``model``: a string of 1..``MAX_MODEL_CHARS`` characters."""
    m = body.get("model")
    if not isinstance(m, str) or not m:
        raise Refused(400, "The request body needs a non-empty string 'model'.")
    if len(m) > MAX_MODEL_CHARS:
        raise Refused(400, f"'model' is longer than {MAX_MODEL_CHARS} characters.")
    return m


def output_cap(body: dict[str, Any]) -> int | None:
    """The output cap the request sets, or None when it sets none.

    A present, non-null cap must be an integer from 1 to ``MAX_OUTPUT_TOKENS`` (``true`` is not
    an integer here, and neither is ``1e29``): the guard reserves on it.
    """
    for k in OUTPUT_CAP_FIELDS:
        v = body.get(k)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_OUTPUT_TOKENS:
            raise Refused(400, f"'{k}' must be an integer from 1 to {MAX_OUTPUT_TOKENS}.")
        return v
    return None


def choices(body: dict[str, Any]) -> int:
    """OpenAI chat's ``n``: how many completions one request asks for (each up to the output
    cap, so the reservation multiplies by it). Absent or null is 1."""
    v = body.get("n")
    if v is None:
        return 1
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_CHOICES:
        raise Refused(400, f"'n' must be an integer from 1 to {MAX_CHOICES}.")
    return v
