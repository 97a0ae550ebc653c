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
    fewest_samples,
    fit_budget,
    max_samples_for,
    max_samples_given,
    neighbour_samples,
    snap_samples,
    within_budget,
)
from agenttts.environment.task import Stage, Task
from agenttts.proposers.insight.preferences import clear_margin, ranked_models


@dataclass(frozen=True)
class Move:
    """A configuration worth trying, and why (it becomes the proposal's rationale)."""

    config: Config
    why: str


def geo_mid(stage: Stage, a: int, b: int) -> int:
    """The allowed sample count nearest the geometric midpoint of two (bisection in log-space)."""
    return snap_samples(stage, math.sqrt(a * b))


def combined_start(task: Task, prefs: dict[str, str]) -> Config:
    """Each stage's preferred model (else its largest) at the S its budget share allows."""
    shares = task.budget_shares()
    out: dict[str, tuple[str, int]] = {}
    for s in task.stages:
        model = prefs.get(s.name) or s.largest_model().name
        top = max_samples_for(s, model, shares[s.name] * task.budget)
        out[s.name] = (model, max(fewest_samples(s, model), top))
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
    lower = [s for s in tried if s < s_c]
    upper = [s for s in tried if s > s_c]
    probes: list[int] = []
    if peaked and s_c > fewest_samples(stage, center[stage.name].model):
        lo = max(lower) if lower else None
        p = snap_samples(stage, s_c / 2, "down") if lo is None else geo_mid(stage, lo, s_c)
        if p < s_c and p not in tried and (lo is None or p > lo):
            probes.append(p)
    hi = min(upper) if upper else None
    if s_c < stage.max_samples and stage.model(center[stage.name].model).kind == "llm":
        p = snap_samples(stage, s_c * 2, "up") if hi is None else geo_mid(stage, s_c, hi)
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
    rng: random.Random | None = None,
) -> list[Move]:
    """Every move worth trying around `center`, best first; the stages take turns in the
    seed's order (`rng`; None: pipeline order)."""
    peaked = 2 not in no
    trade = 3 not in no
    stages = task.stages
    local: list[Move] = []
    traded: list[Move] = []
    swaps: list[Move] = []
    order = list(enumerate(stages))
    if rng is not None:
        rng.shuffle(order)
    for i, stage in order:
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
            s = max(fewest_samples(stage, model), max_samples_for(stage, model, own))
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
                cfg = cfg.with_stage(down.name, dsc.model, snap_samples(down, dsc.samples / 2))
                fitted = fit_budget(task, cfg, keep=stage.name)
                if fitted is not None:
                    traded.append(
                        Move(fitted, f"{stage.name}: stronger {m.name}; {down.name} samples less")
                    )
    # Interleave so each stage and each kind of move gets an early slot.
    ordered = interleave(local, traded)
    return interleave(ordered, swaps) if flat or 1 in no else ordered + swaps


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
                    snap_samples(st, center[st.name].samples * f)
                    if st.model(center[st.name].model).kind == "llm"
                    else 1,
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


def rebalance_moves(
    task: Task, center: Config, trade: bool, factors: Sequence[float] = (0.5,)
) -> list[Move]:
    """Insight 3 with insight 2: the other stages sample less (their peaks may lie lower) and
    the budget that frees goes to one stage, raised to what the rest leaves. A better upstream
    lowers what downstream needs, so where the budget goes is searched as a whole. Every stage
    takes its turn as the one that gains; then pairs (one stage less, one more) follow."""
    if not trade:
        return []
    out: list[Move] = []
    groups = [[s for s in task.stages if s.name != up.name] for up in task.stages]
    if len(task.stages) > 2:
        groups += [[d] for d in task.stages]  # pairs: one stage less, each other one more
    for f in factors:
        for downs in groups:
            cut = center
            for d in downs:
                sc = cut[d.name]
                if d.model(sc.model).kind == "llm":
                    cut = cut.with_stage(d.name, sc.model, snap_samples(d, sc.samples * f))
            if cut == center:
                continue
            lowered = ", ".join(
                f"{d.name} S {center[d.name].samples}->{cut[d.name].samples}"
                for d in downs
                if cut[d.name] != center[d.name]
            )
            for up in task.stages:
                if any(up.name == d.name for d in downs):
                    continue
                m = cut[up.name].model
                top = max_samples_given(task, cut, up, m)
                if top > cut[up.name].samples:
                    out.append(
                        Move(
                            cut.with_stage(up.name, m, top),
                            f"{lowered}; {up.name} S {cut[up.name].samples}->{top} takes the "
                            "budget that frees",
                        )
                    )
    return out


def top_centers(task: Task, trials: Archive, rng: random.Random, limit: int = 3) -> list[Config]:
    """Up to `limit` distinct configurations at the best score (full-fidelity trials, any
    phase). On a coarse split a tie is a plateau and the optimum is as likely near any of its
    members: which ones is the seed's choice, so seeds are independent samples."""
    best = trials.best()
    if best is None:
        return []
    top = best.score or 0.0
    tied = [t for t in trials.ranked() if t.fidelity >= 1.0 and (t.score or 0.0) >= top - 1e-9]
    rng.shuffle(tied)
    out: list[Config] = []
    for t in tied:
        if t.config not in out:
            out.append(t.config)
    return out[:limit]


def model_probes(task: Task, trials: Archive, center: Config, trade: bool) -> list[Move]:
    """Insight 1 never locks a stage out of a model: each other model of a stage is tried below
    the fewest samples it ran so far (its curve may peak lower, insight 2: a small model at four
    samples can beat a large one at one), with the other stages as in the incumbent."""
    out: list[Move] = []
    for stage in task.stages:
        for model in stage.model_names:
            if model == center[stage.name].model or stage.model(model).kind != "llm":
                continue
            ran = [
                t.config[stage.name].samples
                for t in trials.scored()
                if t.config[stage.name].model == model
            ]
            if not ran:
                continue
            s = probe_below(stage, fewest_samples(stage, model), min(ran))
            if s is None:
                continue
            cfg = center.with_stage(stage.name, model, s)
            if not within_budget(task, cfg):
                fitted = fit_budget(task, cfg, keep=stage.name) if trade else None
                if fitted is None:
                    continue
                cfg = fitted
            out.append(
                Move(cfg, f"{stage.name}: {model} below the S it ran at ({min(ran)} -> {s})")
            )
    return out


def probe_below(stage: Stage, low: int, ran: int) -> int | None:
    """The count to try a model at below the fewest it ran at (`ran`): the log-midpoint down to
    `low`, else the next allowed count down (a midpoint of two neighbours snaps back up, which
    would stop the probes one count short of `low`); None once `ran` is `low`."""
    if ran <= low:
        return None
    s = geo_mid(stage, low, ran)
    if s < ran:
        return s
    below = neighbour_samples(stage, ran, -1)
    return below if below is not None and below >= low else None


def interleave(a: Sequence[Move], b: Sequence[Move]) -> list[Move]:
    """a[0], b[0], a[1], b[1], ...: each kind of move gets an early slot."""
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
            s = snap_samples(stage, sc.samples * 2 ** rng.uniform(-1.5, 1.5))
            if stage.model(model).kind != "llm":
                s = 1
            out[stage.name] = StageConfig(model=model, samples=s)
        cfg = Config(out)
        if within_budget(task, cfg):
            yield cfg
