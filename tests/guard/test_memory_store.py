"""The in-process store's journal: a restart does not reset month-to-date spend."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal as D

import pytest

from tailguard.guard import Guard, MemoryStore, Request
from tailguard.guard.stores.memory import JOURNAL

from .conftest import T0, policy

TIER = {"hard_limit_usd": 1, "overage": "hard_cap", "session_max_usd_per_hour": 5}


def test_restart_keeps_spend_and_kills(tmp_path, clock):
    g = Guard(policy(TIER), MemoryStore(tmp_path), clock=clock)
    g.settle(g.check(Request("acme", D("0.70"))).reservation, D("0.70"))
    g.check(Request("acme", D("0.20")))  # in flight when the process stops: not persisted
    assert g.check(Request("acme", D("6"), session_id="s")).action == "kill"
    g.close()

    g2 = Guard(policy(TIER), MemoryStore(tmp_path), clock=clock)
    st = g2.status("acme")
    assert (st["spent"], st["reserved"]) == (D("0.70"), 0)
    assert g2.check(Request("acme", D("0.31"))).action == "deny"  # 0.70 + 0.31 > 1.00
    assert g2.check(Request("acme", D("0.01"), session_id="s")).action == "kill"
    g2.close()


def test_sigkill_loses_at_most_the_flush_interval(tmp_path):
    """A child process settles, waits past one flush, settles again and is SIGKILLed at once."""
    code = textwrap.dedent(f"""
        import os, signal, time
        from decimal import Decimal as D
        from tailguard.guard import Guard, MemoryStore, Request
        from tests.guard.conftest import policy
        g = Guard(policy({{"overage": "payg"}}), MemoryStore({str(tmp_path)!r},
                  flush_interval_s=0.05), clock=lambda: {T0})
        g.settle(g.check(Request("acme", D("1"))).reservation, D("0.40"))
        time.sleep(0.5)  # ten flush intervals: the 0.40 is in the file
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=".", timeout=60)
    assert p.returncode == -9
    g = Guard(policy({"overage": "payg"}), MemoryStore(tmp_path), clock=lambda: T0)
    assert g.status("acme")["spent"] == D("0.40")
    g.close()


def test_torn_last_line_is_ignored(tmp_path, clock):
    g = Guard(policy(TIER), MemoryStore(tmp_path), clock=clock)
    g.settle(g.check(Request("acme", D("0.30"))).reservation, D("0.30"))
    g.close()
    with (tmp_path / JOURNAL).open("a") as fh:
        fh.write("S\ttg:{acme}:b:usd:mon")  # a crash in the middle of a write
    g2 = Guard(policy(TIER), MemoryStore(tmp_path), clock=clock)
    assert g2.status("acme")["spent"] == D("0.30")
    g2.close()


def test_one_process_owns_a_state_dir(tmp_path):
    s = MemoryStore(tmp_path)
    code = f"from tailguard.guard import MemoryStore; MemoryStore({str(tmp_path)!r})"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "in use by another process" in p.stderr
    MemoryStore(tmp_path, readonly=True).close()  # reading alongside is fine
    s.close()


def test_expired_keys_do_not_pile_up(tmp_path, clock):
    g = Guard(policy({"overage": "payg", "rpm": 1000}), MemoryStore(tmp_path), clock=clock)
    for i in range(50):
        g.release(g.check(Request(f"c{i}", D("0.01"))).reservation)
    clock.advance(40 * 86400)  # past every window and the month's keep time
    st = g.store
    assert isinstance(st, MemoryStore)
    st._sweep(int(clock() * 1000))
    assert st._rates == {} and st._caps == {}
    g.close()


@pytest.mark.parametrize("bad", ["\x1e", "a\tb", "x\ny"])
def test_odd_ids_are_hashed_into_keys(bad, clock):
    g = Guard(policy({"hard_limit_usd": 1, "overage": "hard_cap"}), clock=clock)
    d = g.check(Request(bad, D("0.5"), session_id=bad, task_id=bad, user_id=bad))
    assert d.allowed
    g.settle(d.reservation, D("0.5"))
    assert g.status(bad)["spent"] == D("0.5")


def test_checks_and_settles_never_write_the_journal_file(tmp_path, clock):
    """The journal is written by the flusher thread (here: never within the test) and by
    close(), not by a check or settle: 300 settles make ~17 KB of lines, twice a file buffer's
    8 KiB, yet the file stays as the open left it; close() writes all 300."""
    store = MemoryStore(tmp_path, flush_interval_s=3600)
    g = Guard(policy({"overage": "payg"}), store, clock=clock)
    size = (tmp_path / JOURNAL).stat().st_size
    for i in range(300):
        g.settle(g.check(Request(f"customer-{i % 7}", D("0.02"))).reservation, D("0.01"))
    assert (tmp_path / JOURNAL).stat().st_size == size
    g.close()
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    assert len(lines) == 300 and all(line.startswith("S\t") for line in lines)
    g2 = Guard(policy({"overage": "payg"}), MemoryStore(tmp_path), clock=clock)
    # customer-0 settled at i = 0, 7, ..., 294: 43 times $0.01
    assert g2.status("customer-0")["spent"] == D("0.43")
    g2.close()


def test_expired_keys_are_swept_by_checks(clock):
    """Without calling the sweep: after 4,096 checks (more than the store's keys) the keys
    that expired are gone. 50 customers leave a minute window each (rpm), a budget and a
    reservation set; 40 days later one customer's checks sweep the other 49's."""
    g = Guard(policy({"overage": "payg", "rpm": 10**6}), MemoryStore(), clock=clock)
    for i in range(50):
        g.release(g.check(Request(f"c{i}", D("0.01"))).reservation)
    st = g.store
    assert isinstance(st, MemoryStore)
    assert len(st._rates) == 50
    clock.advance(40 * 86400)
    for _ in range(4096):
        g.release(g.check(Request("c0", D("0.01"))).reservation)
    # left: c0's current minute window and budget (the sweep ran before its first new check
    # was applied, or after: either way nothing of c1..c49 is left)
    assert all(k.startswith("tg:{c0}:") for k in [*st._rates, *st._caps])
    g.close()


def test_a_settle_after_its_counters_were_swept_counts_on_fresh_ones(clock):
    """The memory store's settle reaches each counter through the entry its check kept; an
    entry that expired and was swept meanwhile is looked up again. A $0.30 call in session
    "s" at 12:00:15 (1,794,312,015,000 ms: hour 1,794,312,015,000 // 3,600,000 = 498,420, its
    velocity key kept until hour 498,422, 14:00) is settled at $0.20 at
    15:00:15, after a sweep removed that key: the $0.20 lands in the store's dictionary (a
    fresh entry, already expired, so reads show 0), never in the removed entry; the month's
    budget counts it ($0.20 spent, nothing reserved)."""
    g = Guard(policy(TIER), clock=clock)
    st = g.store
    assert isinstance(st, MemoryStore)
    d = g.check(Request("acme", D("0.30"), session_id="s"))
    assert d.allowed
    vkey = "tg:{acme}:v:s:498420"
    kept = st._caps[vkey]
    assert kept == [0, 300_000, 498_422 * 3_600_000]
    clock.advance(3 * 3600)
    st._sweep(int(clock() * 1000))
    assert vkey not in st._caps
    g.settle(d.reservation, D("0.20"))
    assert st._caps[vkey][0] == 200_000 and kept[0] == 0
    assert st.read([vkey], int(clock() * 1000)) == [(0, 0)]
    s = g.status("acme")
    assert (s["spent"], s["reserved"]) == (D("0.20"), 0)


def test_a_refused_check_leaves_every_counter_as_it_was(clock):
    """The memory store counts each rate window and reserves each cap as it passes, and
    undoes them when a later one refuses. Task $0.50, one call a minute per user; $0.30
    settled on the task at 12:00:15 by user "u" in session "s". At 12:00:25 a $0.25 call of
    the same task by user "u2" in a new session "s2" passes the account's and the new user's
    windows (a new entry) and the token window, its velocity cap (a new entry), the budget and
    the task's step cap (found, its expiry moved from 12:00:15 + 7 days to 12:00:25 + 7 days),
    then the task's dollars refuse it (0.30 + 0.25 > 0.50): every counter is as it was before
    the call, the new entries gone and the step cap's expiry back. A call by "u" then passes
    the account's window and is refused by the user's (one a minute): the account's window
    gives its count back."""
    tier = {
        "hard_limit_usd": 10,
        "overage": "hard_cap",
        "rpm": 100,
        "user_rpm": 1,
        "tpm": 1_000_000,
        "task_max_llm_calls": 5,
        "task_max_cost_usd": "0.5",
        "session_max_usd_per_hour": 5,
    }
    g = Guard(policy(tier), clock=clock)
    st = g.store
    assert isinstance(st, MemoryStore)
    first = g.check(Request("acme", D("0.30"), user_id="u", task_id="t", session_id="s"))
    g.settle(first.reservation, D("0.30"))
    caps = {k: list(v) for k, v in st._caps.items()}
    rates = {k: list(v) for k, v in st._rates.items()}
    assert caps["tg:{acme}:ts:t"] == [1, 0, int(T0 * 1000) + 7 * 86_400_000]
    assert sorted(rates) == [
        "tg:{acme}:rm:29905200",
        "tg:{acme}:tm:29905200",
        "tg:{acme}:u:u:29905200",
    ]
    clock.advance(10)
    d = g.check(Request("acme", D("0.25"), user_id="u2", task_id="t", session_id="s2"))
    assert (d.action, d.rule) == ("deny", "task_max_cost_usd")
    assert (st._caps, st._rates) == (caps, rates)
    d = g.check(Request("acme", D("0.01"), user_id="u"))
    assert (d.action, d.rule) == ("deny", "user_rpm")
    assert (st._caps, st._rates) == (caps, rates)
    assert g.check(Request("acme", D("0.20"), task_id="t", session_id="s2")).allowed  # 0.50
