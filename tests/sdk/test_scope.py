"""The task scope: nested tasks, asyncio tasks and threads each see the right customer; calls
outside a task go to the default customer or are counted as unattributed; never dropped."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.sdk import UNATTRIBUTED, Tailguard, current_task
from tailguard.sdk.client import Tailguard as Handle
from tests.sdk.conftest import ListSink, Mock, ledger_rows

MSG = [{"role": "user", "content": "a b"}]


def _handle(default: str | None = None) -> Handle:
    return Handle(ListSink(), default_customer=default)


def _flushed(h: Handle) -> list[dict[str, object]]:
    h.flush()
    sink = h.recorder.sink
    assert isinstance(sink, ListSink)
    return sink.events


def test_nested_tasks_inherit_and_restore() -> None:
    h = _handle()
    with h.task(customer="acme", user="u1", feature="support", workload="agent") as outer:
        with h.task(feature="search") as inner:
            inner.tool("kb", kind="read")
            assert current_task() is inner
        outer.outcome("accepted")
        assert current_task() is outer
    assert current_task() is None
    tool, outcome = _flushed(h)
    assert (tool["customer_id"], tool["user_id"], tool["feature"]) == ("acme", "u1", "search")
    assert tool["workload"] == "agent"
    assert tool["task_id"] == inner.task_id != outer.task_id == outcome["task_id"]
    assert outcome["feature"] == "support"


def test_asyncio_tasks_do_not_leak(mock: Mock) -> None:
    h = _handle()

    async def one(customer: str, n: int) -> None:
        c = h.instrument(openai.AsyncOpenAI(base_url=mock.url + "/v1", api_key="k"))
        async with h.task(customer=customer):
            # a child task created inside the scope inherits it
            await asyncio.gather(
                *(c.chat.completions.create(model="gpt-4o", messages=MSG) for _ in range(n))
            )
        await c.close()

    async def main() -> None:
        await asyncio.gather(one("a", 3), one("b", 2), one("c", 1))

    asyncio.run(main())
    evs = _flushed(h)
    counts = {c: sum(1 for e in evs if e["customer_id"] == c) for c in "abc"}
    assert counts == {"a": 3, "b": 2, "c": 1}


def test_threads_with_copied_context(mock: Mock) -> None:
    h = _handle(default="fallback")
    c = h.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k"))

    def work() -> None:
        c.chat.completions.create(model="gpt-4o", messages=MSG)

    with h.task(customer="acme"):
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(work,))  # the documented way
        t.start()
        t.join()
        with ThreadPoolExecutor(2) as pool:
            pool.submit(contextvars.copy_context().run, work).result()
            pool.submit(work).result()  # no copy: a fresh context, the default customer
    evs = _flushed(h)
    assert sorted(str(e["customer_id"]) for e in evs) == ["acme", "acme", "fallback"]


def test_outside_any_task_counted_unattributed(tg: Tailguard, tmp_path: Path, mock: Mock) -> None:
    c = tg.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k"))
    c.chat.completions.create(model="gpt-4o", messages=MSG)
    c.embeddings.create(model="text-embedding-3-small", input="x")
    tg.flush()
    assert tg.stats()["unattributed"] == 2
    rows = ledger_rows(tmp_path / "ledger")
    assert [r["customer_id"] for r in rows] == [UNATTRIBUTED, UNATTRIBUTED]


def test_bad_arguments_raise_at_once() -> None:
    h = _handle()
    with h.task(customer="x") as t:
        with pytest.raises(ValueError, match="outcome must be one of"):
            t.outcome("done")
        with pytest.raises(ValueError, match="read"):
            t.tool("x", kind="delete")
    with pytest.raises(ValueError, match="workload"):
        h.task(customer="x", workload="batch")


@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=3),
        lambda inner: st.lists(
            st.tuples(st.sampled_from(["a", "b", "c", None]), inner), min_size=1, max_size=3
        ),
        max_leaves=12,
    )
)
def test_each_event_carries_its_innermost_customer(tree: list[object]) -> None:
    """Invariant: an event's customer is the nearest enclosing task's that set one."""
    h = _handle(default="dflt")
    expected: list[str] = []

    def walk(node: list[object], current: str) -> None:
        for item in node:
            if isinstance(item, tuple):
                cust, sub = item
                with h.task(customer=cust):
                    walk(sub, cust if cust is not None else current)
            else:
                with h.task(customer=item) as t:
                    t.retrieval(queries=1)
                expected.append(item if item is not None else current)

    walk(tree, "dflt")
    assert [e["customer_id"] for e in _flushed(h)] == expected
