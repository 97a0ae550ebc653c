"""Moves around the incumbent (insights 2 and 3): sample-count bisection, budget trades, model
swaps, joint scaling, filling the leftover budget, and seeded neighbours once the brackets close."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agenttts.archive import Archive
from agenttts.environment.space import (
    Config,
    StageConfig,
    cheapest_config,
    fit_budget,
    max_samples_for,
    max_samples_given,
    within_budget,
)
from agenttts.environment.task import Stage, Task
from agenttts.proposers.insight.preferences import clear_margin, ranked_models


@dataclass(frozen=True)
class Move:
    """A configuration worth trying, and why (it becomes the proposal's rationale)."""

    config: Config
    why: str


def geo_mid(a: int, b: int) -> int:
    """Rounded geometric midpoint of two sample counts (bisection in log-space)."""
    return round(math.sqrt(a * b))


def combined_start(task: Task, prefs: dict[str, str]) -> Config:
    """Each stage's preferred model (else its largest) at the S its budget share allows."""
    shares = task.budget_shares()
    out: dict[str, tuple[str, int]] = {}
    for s in task.stages:
        model = prefs.get(s.name) or s.largest_model().name
        out[s.name] = (model, max(1, max_samples_for(s, model, shares[s.name] * task.budget)))
    config = Config.of(out)
    fitted = fit_budget(task, config, keep="")
    return fitted or cheapest_config(task)


def start_configs(task: Task, options: dict[str, list[str]], limit: int = 4) -> list[Config]:
    """The preferred models combined at their budget shares, then the same with one (then more)
    stages on a tied runner-up model: a tie on a coarse split is settled by trying both."""
    names = task.stage_names
    combos = list(itertools.product(*(range(len(options[n])) for n in names)))
    combos.sort(key=lambda c: (sum(1 for i in c if i), c))
    out: list[Config] = []
    for combo in combos:
        cfg = combined_start(task, {n: options[n][i] for n, i in zip(names, combo, strict=True)})
        if cfg not in out:
            out.append(cfg)
        if len(out) >= limit:
            break
    return out


def line_scores(task: Task, trials: Archive, center: Config, stage: str) -> dict[int, float]:
    """Scores along one stage's S with its model and every other stage as in `center` (an index
    the archive keeps: this is asked many times per iteration, so it must not scan the archive)."""
    return trials.scores_along(center, stage)


def sample_probes(
    task: Task, trials: Archive, center: Config, stage: Stage, *, peaked: bool
) -> tuple[list[int], bool]:
    """Next S values for one stage (insight 2), and whether its bracket is closed.

    With `peaked` off (no insight 2), only larger S is tried: more samples assumed never to hurt.
    """
    s_c = center[stage.name].samples
    tried = line_scores(task, trials, center, stage.name)
    tried.setdefault(s_c, 0.0)
    cap = stage.max_samples
    lower = [s for s in tried if s < s_c]
    upper = [s for s in tried if s > s_c]
    probes: list[int] = []
    if peaked and s_c > 1:
        lo = max(lower) if lower else None
        p = max(1, s_c // 2) if lo is None else geo_mid(lo, s_c)
        if p < s_c and p not in tried and (lo is None or p > lo):
            probes.append(p)
    hi = min(upper) if upper else None
    if s_c < cap:
        p = min(cap, s_c * 2) if hi is None else geo_mid(s_c, hi)
        if p > s_c and p not in tried and (hi is None or p < hi):
            probes.append(p)
    return probes, not probes


def candidate_moves(
    task: Task,
    trials: Archive,
    center: Config,
    prefs: dict[str, str],
    no: frozenset[int],
    flat: bool,
) -> list[Move]:
    """Every move worth trying around `center`, best first."""
    peaked = 2 not in no
    trade = 3 not in no
    stages = task.stages
    local: list[Move] = []
    traded: list[Move] = []
    swaps: list[Move] = []
    for i, stage in enumerate(stages):
        sc = center[stage.name]
        probes, _ = sample_probes(task, trials, center, stage, peaked=peaked)
        for s in probes:
            cfg = center.with_stage(stage.name, sc.model, s)
            if within_budget(task, cfg):
                local.append(Move(cfg, f"{stage.name}: S {sc.samples}->{s}"))
            elif trade:
                fitted = fit_budget(task, cfg, keep=stage.name)
                if fitted is not None:
                    traded.append(
                        Move(fitted, f"{stage.name}: S {sc.samples}->{s}, others sample less")
                    )
            else:
                top = max_samples_given(task, center, stage, sc.model)
                if top > sc.samples:
                    local.append(
                        Move(
                            center.with_stage(stage.name, sc.model, top),
                            f"{stage.name}: S {sc.samples}->{top} (fills the budget)",
                        )
                    )
        # Model swaps at about the same stage cost (insight 1's runner-up, or the search itself
        # when insight 1 is off).
        own = stage.cost(sc.model, sc.samples)
        for model in ranked_models(task, stage, trials, prefs):
            if model == sc.model:
                continue
            s = max(1, max_samples_for(stage, model, own))
            cfg = center.with_stage(stage.name, model, s)
            if not within_budget(task, cfg):
                if not trade:
                    continue
                fitted = fit_budget(task, cfg, keep=stage.name)
                if fitted is None:
                    continue
                cfg = fitted
            swaps.append(Move(cfg, f"{stage.name}: model {sc.model}->{model} at S={s}"))
        # Insight 3: a stronger upstream model, downstream sampling less.
        if trade and i < len(stages) - 1:
            params = stage.model(sc.model).params or 0.0
            stronger = [m for m in stage.models if (m.params or 0.0) > params and m.kind == "llm"]
            for m in sorted(stronger, key=lambda m: m.params or 0.0)[:1]:
                cfg = center.with_stage(stage.name, m.name, sc.samples)
                down = stages[i + 1]
                dsc = center[down.name]
                cfg = cfg.with_stage(down.name, dsc.model, max(1, dsc.samples // 2))
                fitted = fit_budget(task, cfg, keep=stage.name)
                if fitted is not None:
                    traded.append(
                        Move(fitted, f"{stage.name}: stronger {m.name}; {down.name} samples less")
                    )
    # Interleave so each stage and each kind of move gets an early slot.
    ordered = _interleave(local, traded)
    return _interleave(ordered, swaps) if flat or 1 in no else ordered + swaps


def joint_scales(
    task: Task, center: Config, peaked: bool, factors: Sequence[float] = (0.5, 0.25)
) -> list[Move]:
    """Every stage's S scaled together (insight 2: budget shares often overshoot every stage's
    peak at once; halving all is one trial where per-stage bisection needs one per stage)."""
    out: list[Move] = []
    if not peaked:
        return out
    for f in factors:
        cfg = Config.of(
            {
                st.name: (
                    center[st.name].model,
                    max(1, min(st.max_samples, round(center[st.name].samples * f))),
                )
                for st in task.stages
            }
        )
        if cfg != center and within_budget(task, cfg):
            out.append(Move(cfg, f"every stage's S x{f:g}"))
    return out


def fill_moves(task: Task, center: Config, trade: bool) -> list[Move]:
    """Leftover budget spent on one stage at a time (its S raised to what the rest leaves): the
    optimum usually spends the whole budget (insight 3: where the budget goes is the question)."""
    if not trade:
        return []
    out: list[Move] = []
    for st in task.stages:
        sc = center[st.name]
        top = min(st.max_samples, max_samples_given(task, center, st, sc.model))
        if top > sc.samples:
            cfg = center.with_stage(st.name, sc.model, top)
            out.append(Move(cfg, f"{st.name}: S {sc.samples}->{top} spends the leftover budget"))
    return out


def top_centers(trials: Archive, limit: int = 3) -> list[Config]:
    """The distinct configurations at the best search score: on a coarse split a tie is a
    plateau, and the optimum is as likely near any of its members. Full-fidelity trials only:
    a partial score (racing) is a share of the items, no plateau member."""
    pool = trials.scored().full().in_phase("search")
    if not pool:
        return []
    top = max(t.score or 0.0 for t in pool)
    tied = [t for t in pool if (t.score or 0.0) >= top - 1e-9]
    tied.sort(key=lambda t: t.trial_id)  # earliest first: starts and structured moves
    out: list[Config] = []
    for t in tied:
        if t.config not in out:
            out.append(t.config)
        if len(out) >= limit:
            break
    return out


def _interleave(a: Sequence[Move], b: Sequence[Move]) -> list[Move]:
    out: list[Move] = []
    for k in range(max(len(a), len(b))):
        if k < len(a):
            out.append(a[k])
        if k < len(b):
            out.append(b[k])
    return out


def scores_flat(task: Task, trials: Archive) -> bool:
    """The archive's top scores vary little, or the last iteration found nothing better: explore."""
    scored = trials.scored()
    pool = scored.in_phase("search")
    if len(pool) < 2:
        return False
    last = max(t.iteration for t in pool)
    before = [t.score or 0.0 for t in scored if t.iteration < last]
    now = [t.score or 0.0 for t in pool.in_iteration(last)]
    if before and now and max(now) <= max(before):
        return True
    top = sorted((t.score or 0.0 for t in pool), reverse=True)[:5]
    return len(top) >= 3 and top[0] - top[-1] <= clear_margin(task) / 2


def neighbourhood(task: Task, center: Config, rng: random.Random) -> Iterable[Config]:
    """Seeded random neighbours of the incumbent: the batch filler once the brackets close."""
    for _ in range(200):
        out = dict(center.root)
        for stage in task.stages:
            if rng.random() < 0.5:
                continue
            sc = out[stage.name]
            model = rng.choice(stage.model_names) if rng.random() < 0.25 else sc.model
            s = max(1, min(stage.max_samples, round(sc.samples * 2 ** rng.uniform(-1.5, 1.5))))
            out[stage.name] = StageConfig(model=model, samples=s)
        cfg = Config(out)
        if within_budget(task, cfg):
            yield cfg
