"""What the benchmark scripts share: timing loops and the simulated ledger they run on.

The scripts are run as ``python bench/NAME.py``, so this directory is on ``sys.path``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_times(fn: Callable[[], Any], repeat: int = 1) -> tuple[list[float], Any]:
    """Call ``fn`` ``repeat`` times: (wall seconds of each call, the last result)."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """(median wall seconds over ``repeat`` calls, the last result)."""
    times, out = run_times(fn, repeat)
    return statistics.median(times), out


def simulated_ledger(root: Path, *, customers: int, days: int, seed: int) -> Any:
    """The simulator's ledger under ``root/ledger``, generated only when absent.

    Ingested with the simulated operator's prices (``SimulationResult.load_into``), so tool,
    retrieval and escalation costs are in the figures like in the demo.
    """
    from tailguard.ledger import Ledger
    from tailguard.simulate import simulate

    led = Ledger(root / "ledger")
    if not led.segment_files():
        t_sim, res = timed(
            lambda: simulate(customers=customers, days=days, seed=seed, out=root, fmt="parquet")
        )
        t_ing, _ = timed(lambda: res.load_into(led))
        print(f"simulated {res.events:,} events in {t_sim:.1f} s, ingested in {t_ing:.1f} s")
    return led
