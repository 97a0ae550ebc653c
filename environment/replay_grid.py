"""Grid replay: answer trials from a table of precomputed results, as the paper's own code does.

The table (CSV, or a SQLite table) has one row per configuration:

    <stage>.model, <stage>.samples   for every stage of the task
    one column per metric of the task
    split                            optional; an empty cell (or no column) serves every split
    <stage>.prompt_tokens, <stage>.completion_tokens, queries
                                     optional; totals over the row's `queries` questions, which
                                     give a measured cost (else measured_cost is None)

Rows are numbered from 1 in data order (CSV: the line after the header is row 1; SQLite: rowid).
Columns the task does not name are ignored.

Lookup: the row with the same models and the same sample counts. Where there is none, the nearest
row with the same models by

    d = sum over stages of |log2 S_row - log2 S_query|

so doubling one stage's samples is distance 1 however many samples it has (8 vs 16 is as far as
64 vs 128). Rows within `tolerance` (default 1.0: one stage off by at most a factor of two) may
answer; the nearest wins, then a row for the trial's own split over an any-split row, then the
earlier row. Nothing within tolerance is a recorded failure, not an exception. Distances are summed
in fixed point (log2 in units of 2^-32), so they add exactly and a tie is a tie for a trial and for
the exhaustive sweep alike.

The table is indexed once per task and file version (`grid_for_task` is cached on the table's
path, mtime and size, the stages and the metrics), not once per batch.

The exhaustive optimum (`HasOptimum`, for the bench) runs no trial: for each model combination of
the table, the answering row of every sample-count vector of the task's space is found at once by
an exact L1 distance transform over the box of sample counts (two cumulative-minimum passes per
stage on integer keys that carry the distance and the row's rank), then the feasible set is swept
against that table. A box too large for memory falls back to comparing each configuration with
every row, a chunk at a time.
"""

from __future__ import annotations

import csv
import functools
import math
import sqlite3
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.budget import TokenUsage, measured_stage_budget
from agenttts.environment.emulated_cache import CacheEmulation
from agenttts.environment.executor import (
    PerConfigExecutor,
    StageReport,
    TrialResult,
    data_size,
    parse_settings,
)
from agenttts.environment.space import Config, count_feasible, max_samples_given
from agenttts.environment.splits import Split
from agenttts.environment.sweep import (
    OptimumBySweep,
    SweepResult,
    feasible_chunks,
    stage_option_arrays,
)
from agenttts.environment.task import Problem, Task, TaskError

DEFAULT_TOLERANCE = 1.0
SQLITE_MAGIC = b"SQLite format 3\x00"
TABLE_FIELD = "environment.settings.table"


class GridSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="CSV or SQLite file, relative to the task file")
    table_name: str | None = Field(default=None, description="SQLite table; optional if only one")
    tolerance: float = Field(
        default=DEFAULT_TOLERANCE, ge=0, description="largest log2 sample distance a row may answer"
    )


# ------------------------------------------------------------------------------------------------
# Reading the raw table
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawTable:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    row_ids: tuple[int, ...]


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _read_csv(path: Path) -> RawTable:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise TaskError(str(path), [Problem(field=TABLE_FIELD, message=f"{path} is empty")])
        columns = tuple(h.strip() for h in header)
        rows = tuple(tuple(r) for r in reader if any(cell.strip() for cell in r))
    return RawTable(columns, rows, tuple(range(1, len(rows) + 1)))


def _read_sqlite(path: Path, table_name: str | None) -> RawTable:
    where = "environment.settings.table_name"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if table_name is None:
            if len(tables) != 1:
                raise TaskError(
                    str(path),
                    [Problem(field=where, message=f"{path} has tables {tables}: name one")],
                )
            table_name = tables[0]
        elif table_name not in tables:
            raise TaskError(
                str(path),
                [Problem(field=where, message=f"no table {table_name!r} in {path} (has {tables})")],
            )
        quoted = '"' + table_name.replace('"', '""') + '"'
        cur = con.execute(f"SELECT rowid, * FROM {quoted} ORDER BY rowid")
        columns = tuple(d[0] for d in cur.description[1:])
        data = cur.fetchall()
    except sqlite3.DatabaseError as e:
        raise TaskError(str(path), [Problem(field=TABLE_FIELD, message=f"{path}: {e}")]) from e
    finally:
        con.close()
    return RawTable(columns, tuple(r[1:] for r in data), tuple(int(r[0]) for r in data))


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, table_name: str | None, _mtime_ns: int, _size: int) -> RawTable:
    p = Path(path)
    return _read_sqlite(p, table_name) if _is_sqlite(p) else _read_csv(p)


def read_table(path: Path, table_name: str | None = None) -> RawTable:
    """Read once per file version (keyed by mtime and size, so an edited table is re-read)."""
    if not path.is_file():
        raise TaskError(
            str(path), [Problem(field=TABLE_FIELD, message=f"missing table file {path}")]
        )
    st = path.stat()
    return _read_cached(str(path.resolve()), table_name, st.st_mtime_ns, st.st_size)


# ------------------------------------------------------------------------------------------------
# The index: rows grouped by their model tuple, numeric columns as numpy arrays
# ------------------------------------------------------------------------------------------------


def _number(value: Any) -> float:
    """A numeric cell; empty or NULL is NaN; anything else non-numeric raises ValueError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    return float(value)


#: Units per log2 step of the fixed-point distance.
FIXED = 2**32
#: The distance transform holds a few int64 arrays of this many entries at most (~130 MB peak).
BOX_LIMIT = 1 << 22


def fixed_log2(samples: Any) -> np.ndarray:
    """log2 of sample counts in fixed point (int64), so that distances add exactly."""
    return np.rint(np.log2(np.asarray(samples, dtype=np.float64)) * FIXED).astype(np.int64)


@dataclass
class ModelGroup:
    """All rows that share one model per stage."""

    row_ids: np.ndarray  # (n,) the table's row numbers
    samples: np.ndarray  # (n, stages) int
    log2_samples: np.ndarray  # (n, stages) fixed point (`fixed_log2`)
    split: np.ndarray  # (n,) str; "" serves every split
    metrics: np.ndarray  # (n, metrics) float, NaN = no value
    prompt_tokens: np.ndarray  # (n, stages) float, NaN = not measured
    completion_tokens: np.ndarray  # (n, stages)
    queries: np.ndarray  # (n,) float, NaN = not measured


@dataclass
class Match:
    row_id: int
    distance: float
    index: int
    group: ModelGroup


class GridTable:
    """A table indexed for one task's stages and metrics."""

    def __init__(self, stages: Sequence[str], metrics: Sequence[str], groups: dict, n_rows: int):
        self.stages = list(stages)
        self.metrics = list(metrics)
        self.groups: dict[tuple[str, ...], ModelGroup] = groups
        self.n_rows = n_rows

    @classmethod
    def build(
        cls, raw: RawTable, stages: Sequence[str], metrics: Sequence[str]
    ) -> tuple[GridTable | None, list[Problem]]:
        """Index `raw`; returns every problem (missing columns, bad cells, duplicate rows)."""
        where = TABLE_FIELD
        col = {name: i for i, name in enumerate(raw.columns)}
        needed = [f"{s}.{k}" for s in stages for k in ("model", "samples")] + list(metrics)
        missing = [c for c in needed if c not in col]
        if missing:
            return None, [
                Problem(field=where, message=f"table has no column {c!r}") for c in missing
            ]
        tok_cols = [f"{s}.{k}" for s in stages for k in ("prompt_tokens", "completion_tokens")]
        has_tokens = any(c in col for c in tok_cols)
        problems: list[Problem] = []
        if has_tokens and "queries" not in col:
            problems.append(
                Problem(field=where, message="token columns need a 'queries' column to divide by")
            )

        def cell(row: tuple[Any, ...], name: str) -> Any:
            i = col.get(name)
            return None if i is None or i >= len(row) else row[i]

        grouped: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        seen: dict[tuple[Any, ...], int] = {}
        for row_id, row in zip(raw.row_ids, raw.rows, strict=True):
            try:
                models = tuple(str(cell(row, f"{s}.model") or "").strip() for s in stages)
                if any(not m for m in models):
                    raise ValueError("empty model cell")
                samples = []
                for s in stages:
                    v = _number(cell(row, f"{s}.samples"))
                    if not (v >= 1 and float(v).is_integer()):
                        raise ValueError(f"{s}.samples must be an integer >= 1, got {v!r}")
                    samples.append(int(v))
                split = str(cell(row, "split") or "").strip()
                if split not in ("", "train", "test"):
                    raise ValueError(f"split must be train, test or empty, got {split!r}")
                metric_values = [_number(cell(row, m)) for m in metrics]
                prompt = [_number(cell(row, f"{s}.prompt_tokens")) for s in stages]
                completion = [_number(cell(row, f"{s}.completion_tokens")) for s in stages]
                queries = _number(cell(row, "queries"))
            except (ValueError, TypeError) as e:
                problems.append(Problem(field=f"{where}[row {row_id}]", message=str(e)))
                continue
            key = (models, tuple(samples), split)
            if key in seen:
                problems.append(
                    Problem(
                        field=f"{where}[row {row_id}]",
                        message=f"duplicates row {seen[key]} (same models, samples and split)",
                    )
                )
                continue
            seen[key] = row_id
            grouped.setdefault(models, []).append(
                (row_id, samples, split, metric_values, prompt, completion, queries)
            )
        if problems:
            return None, problems
        groups = {}
        for models, rows in grouped.items():
            samples_arr = np.array([r[1] for r in rows], dtype=np.int64).reshape(len(rows), -1)
            groups[models] = ModelGroup(
                row_ids=np.array([r[0] for r in rows], dtype=np.int64),
                samples=samples_arr,
                log2_samples=fixed_log2(samples_arr),
                split=np.array([r[2] for r in rows], dtype=object),
                metrics=np.array([r[3] for r in rows], dtype=float).reshape(len(rows), -1),
                prompt_tokens=np.array([r[4] for r in rows], dtype=float).reshape(len(rows), -1),
                completion_tokens=np.array([r[5] for r in rows], dtype=float).reshape(
                    len(rows), -1
                ),
                queries=np.array([r[6] for r in rows], dtype=float),
            )
        return cls(stages, metrics, groups, len(raw.rows)), []

    def models_in_table(self, stage: str) -> set[str]:
        i = self.stages.index(stage)
        return {models[i] for models in self.groups}

    def lookup(
        self, models: tuple[str, ...], samples: Sequence[int], split: Split
    ) -> tuple[Match | None, str]:
        """The answering row (or None) and, when None, why."""
        group = self.groups.get(models)
        if group is None:
            return None, f"no row of the table has models {' + '.join(models)}"
        serves = (group.split == "") | (group.split == split)
        if not serves.any():
            return None, f"no row with models {' + '.join(models)} serves split {split!r}"
        distance = np.abs(group.log2_samples - fixed_log2(samples)).sum(axis=1)
        distance = np.where(serves, distance, np.iinfo(np.int64).max)
        # Nearest first; then this split's own rows over any-split rows; then table order.
        order = np.lexsort((group.row_ids, group.split == "", distance))
        best = int(order[0])
        return Match(int(group.row_ids[best]), int(distance[best]) / FIXED, best, group), ""

    # --- the exhaustive optimum ---------------------------------------------------------------
    def answers(
        self,
        models: tuple[str, ...],
        split: Split,
        max_samples: Sequence[int],
        metric: str,
        tolerance: float,
    ) -> Callable[[Sequence[np.ndarray]], np.ndarray]:
        """For one model combination: a function from sample counts per stage (arrays, each in
        1..max_samples[k]) to the score `lookup` would answer with, NaN where it would fail (no
        row within `tolerance`, no value for `metric`)."""
        group = self.groups.get(models)
        serves = None if group is None else (group.split == "") | (group.split == split)
        if group is None or serves is None or not serves.any():
            return lambda samples: np.full(len(samples[0]), np.nan)
        # A row farther than the tolerance from every point of the box answers none of them, and
        # where it would be the nearest, the next nearest is beyond the tolerance as well.
        outside = np.maximum(group.log2_samples - fixed_log2(max_samples), 0).sum(axis=1)
        serves &= outside / FIXED <= tolerance + 1e-12
        if not serves.any():
            return lambda samples: np.full(len(samples[0]), np.nan)
        rows = np.flatnonzero(serves)
        # Preference among equally near rows: this split's own first, then table order.
        rows = rows[np.lexsort((group.row_ids[rows], group.split[rows] == ""))]
        values = group.metrics[rows, self.metrics.index(metric)]
        axes = [
            np.union1d(np.arange(1, top + 1), group.samples[rows, k])
            for k, top in enumerate(max_samples)
        ]
        limit = tolerance + 1e-12  # as `GridReplayExecutor._evaluate` tests it

        def scores(distance: np.ndarray, rank: np.ndarray) -> np.ndarray:
            ok = (distance / FIXED <= limit) & ~np.isnan(values[rank])
            return np.where(ok, values[rank], np.nan)

        span = sum(int(fixed_log2(a[-1])) for a in axes) << max(1, len(rows).bit_length())
        if math.prod(len(a) for a in axes) > BOX_LIMIT or span >= 1 << 61:
            coords = group.log2_samples[rows]

            def brute(samples: Sequence[np.ndarray]) -> np.ndarray:
                query = np.stack([fixed_log2(s) for s in samples], axis=1)
                out = np.empty(len(query))
                step = max(1, BOX_LIMIT // (len(rows) * len(axes)))
                for lo in range(0, len(query), step):
                    d = np.abs(coords[None, :, :] - query[lo : lo + step, None, :]).sum(axis=2)
                    rank = d.argmin(axis=1)  # the first minimum: the preferred row
                    out[lo : lo + step] = scores(d[np.arange(len(rank)), rank], rank)
                return out

            return brute
        distance, rank = _nearest_rows(axes, [group.samples[rows, k] for k in range(len(axes))])
        table = scores(distance, rank)
        return lambda samples: table[
            tuple(np.searchsorted(a, s) for a, s in zip(axes, samples, strict=True))
        ]


def _nearest_rows(
    axes: Sequence[np.ndarray], row_samples: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """For every point of the box `axes` (sorted sample counts per stage): the fixed-point L1
    distance to the nearest row and that row's rank (rows in order of preference; the lower rank
    wins a tie). An exact distance transform: the distance is separable over stages, so one
    nearest-neighbour pass per stage suffices, and in one dimension the nearest to the left is
    `x_i + cummin(key_j - x_j)` (to the right likewise), where a key packs (distance, rank) into
    one int64 so that `min` breaks ties by rank."""
    n_rows = len(row_samples[0])
    rank_bits = max(1, int(n_rows).bit_length())
    fixed = [fixed_log2(a) << rank_bits for a in axes]
    inf = np.int64(1) << 62
    key = np.full(tuple(len(a) for a in axes), inf, dtype=np.int64)
    at = tuple(np.searchsorted(a, s) for a, s in zip(axes, row_samples, strict=True))
    np.minimum.at(key, at, np.arange(n_rows, dtype=np.int64))  # distance 0, the best rank
    for k, x in enumerate(fixed):
        shape = [1] * len(axes)
        shape[k] = len(x)
        x = x.reshape(shape)
        left = np.minimum.accumulate(key - x, axis=k) + x
        right = np.flip(np.minimum.accumulate(np.flip(key + x, axis=k), axis=k), axis=k) - x
        key = np.minimum(left, right)
    return key >> rank_bits, key & ((1 << rank_bits) - 1)


def grid_for_task(task: Task, settings: GridSettings) -> tuple[GridTable | None, list[Problem]]:
    """The task's table, indexed once per file version, stages and metrics."""
    path = task.resolve(settings.table)
    try:
        read_table(path, settings.table_name)  # raises for a missing or unreadable table
    except TaskError as e:
        return None, e.problems
    st = path.stat()
    return _indexed(
        str(path.resolve()),
        settings.table_name,
        st.st_mtime_ns,
        st.st_size,
        tuple(task.stage_names),
        tuple(task.metrics),
    )


@functools.lru_cache(maxsize=8)
def _indexed(
    path: str,
    table_name: str | None,
    mtime_ns: int,
    size: int,
    stages: tuple[str, ...],
    metrics: tuple[str, ...],
) -> tuple[GridTable | None, list[Problem]]:
    raw = _read_cached(path, table_name, mtime_ns, size)
    return GridTable.build(raw, stages, metrics)


# ------------------------------------------------------------------------------------------------
# The executor
# ------------------------------------------------------------------------------------------------


class GridReplayExecutor(CacheEmulation, OptimumBySweep, PerConfigExecutor):
    """Replays a precomputed grid: no LLM calls, the same interface as the live executor.

    Declares `HasOptimum`: the exhaustive optimum sweeps the feasible set against the table.
    Not `HasItems`: a row is an aggregate score, so a racing search on a grid is refused.
    `ReplaysCache`: a trial's search cost is what a live search would have paid with its sample
    cache (`environment/emulated_cache.py`, one scope per split, a trial covering all its items).
    """

    kind = "grid"

    def __init__(self, task: Task, **overrides: Any):
        super().__init__(task, **overrides)
        settings, problems = parse_settings(GridSettings, self.settings)
        table = None
        if settings is not None:
            table, problems = grid_for_task(task, settings)
        if problems:
            raise TaskError(task.source, problems)
        assert settings is not None and table is not None
        self.grid_settings = settings
        self.table = table

    @classmethod
    def check_task(cls, task: Task) -> list[Problem]:
        settings, problems = parse_settings(GridSettings, task.environment.settings)
        if settings is None:
            return problems
        table, problems = grid_for_task(task, settings)
        if table is None:
            return problems
        for stage in task.stages:
            present = table.models_in_table(stage.name)
            for m in stage.model_names:
                if m not in present:
                    problems.append(
                        Problem(
                            field=f"stages[{stage.name}].models[{m}]",
                            message=f"model {m!r} never appears in the grid's {stage.name}.model "
                            "column: every trial with it would fail (remove it or add rows)",
                        )
                    )
        return problems

    def sweep(self, split: Split) -> SweepResult:
        """Every feasible configuration's answer, one model combination of the table at a time
        (the others all fail: no row has their models)."""
        task = self.task
        result = SweepResult()
        options = stage_option_arrays(task)
        for models in self.table.groups:
            pairs = list(zip(task.stages, models, strict=True))
            if any(m not in st.model_names for st, m in pairs):
                continue
            # the largest S each stage can have with these models, the others at S=1
            ones = Config.of({st.name: (m, 1) for st, m in pairs})
            caps = [max_samples_given(task, ones, st, m) for st, m in pairs]
            if min(caps) < 1:
                continue
            index = [st.model_names.index(m) for st, m in pairs]
            answer = self.table.answers(
                models, split, caps, task.main_metric, self.grid_settings.tolerance
            )
            for chunk in feasible_chunks(task, models=index, options=options):
                samples = [chunk.samples(k) for k in range(len(task.stages))]
                result.add(task, chunk, answer(samples))
        result.feasible = count_feasible(task)
        return result

    def _cache_rows(
        self, split: Split, items: Sequence[int] | None
    ) -> tuple[Hashable, np.ndarray, int]:
        size = data_size(self.task, split)
        return split, np.arange(size), size

    async def _evaluate(
        self, config: Config, split: Split, items: tuple[int, ...] | None
    ) -> TrialResult:
        # `items` is always None: aggregate rows only, so no `HasItems` (racing refuses a grid)
        stages = self.table.stages
        models = tuple(config[s].model for s in stages)
        samples = [config[s].samples for s in stages]
        nominal = self.nominal_report(config)
        base: dict[str, Any] = {
            "config": config,
            "split": split,
            "nominal_cost": sum(r.nominal_cost for r in nominal.values()),
            "stages": nominal,
        }
        match, why = self.table.lookup(models, samples, split)
        tolerance = self.grid_settings.tolerance
        if match is None:
            return TrialResult(**base, error=why)
        if match.distance > tolerance + 1e-12:
            return TrialResult(
                **base,
                error=f"no grid row within tolerance {tolerance:g} of {config.short()}: nearest "
                f"is row {match.row_id} at d={match.distance:.2f}",
                details={"nearest_row": match.row_id, "distance": match.distance},
            )
        g, i = match.group, match.index
        values = g.metrics[i]
        metrics = {m: float(v) for m, v in zip(self.table.metrics, values, strict=True) if v == v}
        how = "exact" if match.distance == 0 else f"nearest d={match.distance:.2f}"
        row_samples = {s: int(n) for s, n in zip(stages, g.samples[i], strict=True)}
        details = {"row": match.row_id, "distance": match.distance, "row_samples": row_samples}
        if self.task.main_metric not in metrics:
            return TrialResult(
                **base,
                error=f"row {match.row_id} has no value for {self.task.main_metric!r}",
                details=details,
            )
        reports, measured = self._measured(config, g, i)
        return TrialResult(
            **{**base, "stages": self.charged(reports, config, split, None)},
            metrics=metrics,
            measured_cost=measured,
            prompt_tokens=sum(r.prompt_tokens for r in reports.values()),
            completion_tokens=sum(r.completion_tokens for r in reports.values()),
            source=f"row {match.row_id} {how}",
            details=details,
        )

    def _measured(self, config: Config, g: ModelGroup, i: int) -> tuple[dict, float | None]:
        """Per-stage measured cost from the row's tokens, at the trial's own sample counts.

        A nearest row was measured at other sample counts: its mean prompt and per-sample
        completion lengths are applied to the trial's S, as the nominal formula does.
        """
        reports: dict[str, StageReport] = {}
        total: float | None = 0.0
        queries = g.queries[i]
        for j, name in enumerate(self.table.stages):
            stage = self.task.stage(name)
            choice = stage.model(config[name].model)
            nominal = stage.cost(choice.name, config[name].samples)
            p, c = g.prompt_tokens[i, j], g.completion_tokens[i, j]
            measured: float | None = None
            report = StageReport(nominal_cost=nominal)
            if choice.fixed_cost is not None:
                measured = float(choice.fixed_cost)
            elif queries == queries and queries > 0 and p == p and c == c:
                usage = TokenUsage(
                    queries=int(queries),
                    prompt_tokens=round(float(p)),
                    completion_tokens=round(float(c)),
                    samples=int(queries) * int(g.samples[i, j]),
                )
                measured = measured_stage_budget(usage, choice.params or 0.0, config[name].samples)
                report = StageReport(
                    nominal_cost=nominal,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )
            report.measured_cost = measured
            reports[name] = report
            total = None if (total is None or measured is None) else total + measured
        return reports, total
