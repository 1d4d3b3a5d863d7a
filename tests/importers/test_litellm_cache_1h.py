"""``import litellm``: the 1-hour cache writes of an Anthropic call priced at their own rate.

LiteLLM's ``Usage`` (the spend log's ``metadata.usage_object``) splits Anthropic's cache writes
in ``prompt_tokens_details.cache_creation_token_details`` (``ephemeral_5m_input_tokens``,
``ephemeral_1h_input_tokens``), beside the total ``cache_creation_input_tokens``.

By hand, claude-3-5-sonnet-20241022 ($3 input, $3.75 5-minute writes, $6 1-hour writes, $15
output per Mtok; platform.claude.com/docs/en/about-claude/pricing): 1,000 prompt tokens, 800 of
them written (300 for 5 minutes, 500 for 1 hour), 100 completion tokens:

    200 x 3 + 300 x 3.75 + 500 x 6 + 100 x 15 = 600 + 1,125 + 3,000 + 1,500 = 6,225 per Mtok

= $0.006225 (all 800 at the 5-minute rate: $0.0051, the row without the split). A split whose
1-hour writes exceed the writes is refused by name.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.errors import InputError
from tailguard.importers import import_files
from tests.importers.helpers import rows, write_csv


def _row(rid: str, usage: dict) -> dict:
    return {"request_id": rid, "call_type": "acompletion", "startTime": "2025-06-02 09:30:00",
            "endTime": "", "model": "claude-3-5-sonnet-20241022",
            "custom_llm_provider": "anthropic", "end_user": "acme",
            "metadata": json.dumps({"usage_object": usage}), "request_tags": "[]",
            "prompt_tokens": 1000, "completion_tokens": 100, "spend": "",
            "status": "success"}  # fmt: skip


def test_one_hour_writes_from_the_usage_object(tmp_path: Path) -> None:
    split = {"cache_creation_input_tokens": 800,
             "prompt_tokens_details": {"cache_creation_token_details":
                                       {"ephemeral_5m_input_tokens": 300,
                                        "ephemeral_1h_input_tokens": 500}}}  # fmt: skip
    src = write_csv(
        tmp_path / "spend.csv",
        [_row("r1", split), _row("r2", {"cache_creation_input_tokens": 800})],
    )
    import_files("litellm", [src], tmp_path / "L")
    got = rows(tmp_path / "L")
    assert got["litellm:r1"]["cost_usd"] == Decimal("0.006225")
    assert got["litellm:r2"]["cost_usd"] == Decimal("0.0051")
    assert got["litellm:r1"]["cache_write_tokens"] == 800


def test_one_hour_writes_above_the_writes_are_refused(tmp_path: Path) -> None:
    bad = {"cache_creation_input_tokens": 100,
           "prompt_tokens_details": {"cache_creation_token_details":
                                     {"ephemeral_1h_input_tokens": 500}}}  # fmt: skip
    src = write_csv(tmp_path / "spend.csv", [_row("r1", bad)])
    with pytest.raises(InputError) as err:
        import_files("litellm", [src], tmp_path / "L")
    assert err.value.problems == [
        f"{src}:2: cache_write_1h_tokens: cache_write_1h_tokens exceed cache_write_tokens "
        "(cache_write_tokens must include the 1-hour writes)"
    ]
