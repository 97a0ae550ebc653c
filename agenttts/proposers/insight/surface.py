"""Insight 2 as a response surface: where single probes see a plateau, a quadratic fit in log S
reads the trend through the ties and points inside it."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agenttts.archive import Archive
from agenttts.environment.space import BUDGET_TOLERANCE, Config, snap_samples
from agenttts.environment.task import Stage, Task
from agenttts.proposers.insight.moves import Move


def _features(x: np.ndarray, cross: bool) -> np.ndarray:
    """Quadratic design in log S: 1, x_i, x_i^2 and (with interdependence) x_i * x_j."""
    cols = [np.ones(len(x)), *x.T, *(x.T**2)]
    if cross:
        k = x.shape[1]
        cols += [x[:, i] * x[:, j] for i in range(k) for j in range(i + 1, k)]
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class Fit:
    """A concave-shaped quadratic in each stage's log S for one model combination, fitted to the
    archive's trials of that combination, trusted only inside the sample counts they span."""

    models: tuple[str, ...]
    coef: np.ndarray
    cross: bool
    low: tuple[float, ...]  # per stage, the fewest samples observed
    high: tuple[float, ...]  # and the most
    rows: int

    def predict(self, samples: np.ndarray) -> np.ndarray:
        """Fitted scores of sample-count rows (one column per stage)."""
        x = np.log(np.asarray(samples, dtype=float).reshape(-1, len(self.models)))
        return _features(x, self.cross) @ self.coef


def fit_surface(task: Task, trials: Archive, combo: Config, cross: bool) -> Fit | None:
    """The response surface of `combo`'s models; None with too few trials to fit it."""
    names = task.stage_names
    models = tuple(combo[n].model for n in names)
    rows = trials.scored_with_models(dict(zip(names, models, strict=True)))  # an index, no scan
    if len(rows) < 2 * len(names) + 2:
        return None
    x = np.log([[t.config[n].samples for n in names] for t in rows], dtype=float)
    design = _features(x.reshape(len(rows), len(names)), cross)
    if len(rows) < design.shape[1] + 1:
        return None
    y = np.array([t.score or 0.0 for t in rows])
    reg = 1e-3 * np.eye(design.shape[1])
    reg[0, 0] = 0.0
    coef = np.linalg.solve(design.T @ design + reg, design.T @ y)
    low = tuple(float(np.exp(x[:, k].min())) for k in range(len(names)))
    high = tuple(float(np.exp(x[:, k].max())) for k in range(len(names)))
    return Fit(models, coef, cross, low, high, len(rows))


def surrogate_moves(
    task: Task, trials: Archive, combos: Sequence[Config], trade: bool, limit: int = 4
) -> list[Move]:
    """Per model combination, the best unseen configurations within budget under its fitted
    surface (`fit_surface`; cross terms when stages interdepend, insight 3). A coarse training
    split scores in whole items, so neighbouring configurations tie; the fit reads the trend
    through the ties and points inside the plateau, where single probes see nothing."""
    names = task.stage_names
    seen = trials.keys()
    out: list[Move] = []
    for combo in combos:
        fit = fit_surface(task, trials, combo, trade)
        if fit is None:
            continue
        grids = []
        for k, (n, m) in enumerate(zip(names, fit.models, strict=True)):
            st = task.stage(n)
            # Trust region: a quadratic is read only where this combination has been observed.
            values = [v for v in _grid(st) if fit.low[k] - 1e-9 <= v <= fit.high[k] + 1e-9]
            grids.append((np.array(values), np.array([st.cost(m, v) for v in values])))
        mesh = np.meshgrid(*(g[0] for g in grids), indexing="ij")
        cost = functools.reduce(operator.add, np.meshgrid(*(g[1] for g in grids), indexing="ij"))
        s_all = np.stack([m.ravel() for m in mesh], axis=1)
        s_ok = s_all[cost.ravel() <= task.budget + BUDGET_TOLERANCE]
        if not len(s_ok):
            continue
        pred = fit.predict(s_ok)
        taken = 0
        for i in np.argsort(-pred, kind="stable"):
            cfg = Config.of(
                {n: (m, int(v)) for n, m, v in zip(names, fit.models, s_ok[i], strict=True)}
            )
            if cfg.key() in seen:
                continue
            seen.add(cfg.key())
            out.append(Move(cfg, f"response surface of {combo.short()} peaks here"))
            taken += 1
            if taken >= limit:
                break
    return out


def _grid(stage: Stage) -> list[int]:
    """Sample counts to read a fit at: every count up to 16, then 48 log-spaced ones (each an
    allowed count of the stage)."""
    counts = stage.sample_counts
    if len(counts) <= 64:
        return counts
    wanted = {*range(1, 17), *(float(v) for v in np.geomspace(1, counts[-1], 48))}
    return sorted({snap_samples(stage, v) for v in wanted})
