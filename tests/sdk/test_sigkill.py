"""A process recording through the ledger sink is SIGKILLed: nothing it flushed is lost, nothing
is counted twice, and what it recorded after its last flush survives as a prefix (the
write-ahead log keeps order; a torn last line was never acknowledged)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tailguard.sdk import connect
from tests.sdk.conftest import ledger_rows

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, tailguard
    tg = tailguard.connect(ledger=sys.argv[1], flush_interval_s=60)  # only flush() sends
    i = 0
    with tg.task(customer="acme", feature="kill") as task:
        while True:
            task.tool(f"t{i}", kind="read")
            if i % 200 == 199:
                tg.flush()
                print(f"FLUSHED {i}", flush=True)
            i += 1
    """
)


@pytest.mark.slow
def test_sigkill_after_flush_loses_nothing(tmp_path: Path) -> None:
    led = tmp_path / "ledger"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(led)], stdout=subprocess.PIPE, env=env, cwd=tmp_path
    )
    assert proc.stdout is not None
    last = -1
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            assert line.startswith("FLUSHED"), line
            last = int(line.split()[1])
            if last >= 1399:  # seven flushes, then kill it while it keeps recording
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    assert last >= 1399
    # the next process to open the ledger folds the dead one's log in
    connect(ledger=led).close()
    rows = ledger_rows(led, "tool_call")
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids))  # nothing twice
    got = sorted(int(r["tool"][1:]) for r in rows)
    assert got == list(range(len(got)))  # a prefix: no hole
    assert len(got) >= last + 1  # everything flushed is there
