"""The benchmark harness: every search method in the same loop, measured against the optimum."""

from agenttts.search_bench.harness import (
    SIMULATED_TASKS,
    BenchSettings,
    Method,
    RunRecord,
    exhaustive_optimum,
    run_bench,
)
from agenttts.search_bench.output import format_table, write_outputs

__all__ = [
    "SIMULATED_TASKS",
    "BenchSettings",
    "Method",
    "RunRecord",
    "exhaustive_optimum",
    "format_table",
    "run_bench",
    "write_outputs",
]
