"""The simulator: a realistic LLM product's event log with planted heavy-tail customers.

``simulate(customers=..., days=..., seed=..., out=..., fmt=...)`` writes ``events.jsonl`` (or
``events.parquet``), ``customers.csv`` and ``truth.json``; see ``docs/simulator.md`` for the model
and the real data behind each parameter.
"""

from tailguard.simulate.core import SimulationResult, simulate
from tailguard.simulate.population import SHAPE_METRICS, SHAPES

__all__ = ["SHAPES", "SHAPE_METRICS", "SimulationResult", "simulate"]
