"""The benchmark: every search method in the same loop, measured against the optimum.

`harness` runs tasks x methods x seeds and records each run; `methods` parses method names,
`optimum` finds the yardstick, `summary` adds the records up, `output` writes tables and plots.
"""

from agenttts.search_bench.harness import (
    BENCH_TASKS,
    SIMULATED_TASKS,
    SYNTHETIC_TASKS,
    BenchSettings,
    RunRecord,
    run_bench,
)
from agenttts.search_bench.methods import Method
from agenttts.search_bench.optimum import TaskOptimum, exhaustive_optimum
from agenttts.search_bench.output import summary_text, write_outputs

__all__ = [
    "BENCH_TASKS",
    "SIMULATED_TASKS",
    "SYNTHETIC_TASKS",
    "BenchSettings",
    "Method",
    "RunRecord",
    "TaskOptimum",
    "exhaustive_optimum",
    "run_bench",
    "summary_text",
    "write_outputs",
]
