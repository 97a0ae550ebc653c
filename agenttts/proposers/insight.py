"""The three AgentTTS insights as code: a search that needs no LLM.

A named proposer of its own (``insight``), so the loop runs deterministically in tests and offline;
it is never a silent stand-in for the LLM agent. Every call rebuilds its whole view from the archive
(a pure function of task, archive, iteration and seed): a run killed and resumed proposes exactly
what an uninterrupted one would.

- Insight 1 (stages prefer different model sizes): from the initial trials, each stage keeps the
  model that scored best, the smaller one unless the larger is clearly better (by more than one
  training item's worth of score). Without it, model choice is searched by same-cost swaps.
- Insight 2 (each stage has an optimal sample count): around the incumbent, each stage's S is
  searched by bisection in log-space between the nearest sample counts already tried on either side
  (halving/doubling while one side is open), assuming a single peak. Without it, the search assumes
  more samples is always better and only fills the budget.
- Insight 3 (stage budgets interdepend): budget moves between stages (one stage's S up, another's
  down to fit), and an upstream stage is tried with a stronger model while its downstream stage
  samples less. When the archive's best scores vary little, exploration (model swaps, wider jumps)
  moves forward in the batch. Without it, stages are searched one at a time, never traded.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from agenttts.archive import Trial, archived_keys, best_trial, scored
from agenttts.environment.task import Config, Stage, Task
from agenttts.proposers.base import (
    Guidelines,
    Preferences,
    Proposal,
    ProposalContext,
    Proposer,
)


@dataclass(frozen=True)
class Move:
    config: Config
    insight: int
    why: str


def clear_margin(task: Task) -> float:
    """How much better a larger model must score to be preferred: one training item's worth."""
    return max(0.01, 1.0 / max(1, task.data.train_size))


# ------------------------------------------------------------------------------------------------
# Insight 1: model preference from the initial trials
# ------------------------------------------------------------------------------------------------


def init_scores(task: Task, archive: Sequence[Trial]) -> dict[str, dict[str, float]]:
    """Per stage, per model: the score of the initialisation trial that varied only this stage."""
    base = task.largest_single_sample_config()
    out: dict[str, dict[str, float]] = {s.name: {} for s in task.stages}
    best_s: dict[tuple[str, str], int] = {}
    init = [t for t in scored(archive) if t.phase == "init"]
    for t in init:
        for stage in task.stages:
            if any(t.config[o.name] != base[o.name] for o in task.stages if o.name != stage.name):
                continue
            sc = t.config[stage.name]
            key = (stage.name, sc.model)
            if sc.samples >= best_s.get(key, 0):  # the share-max trial, not the (largest, 1) base
                best_s[key] = sc.samples
                out[stage.name][sc.model] = float(t.score or 0.0)
    # A largest model too costly for its stage's share has no trial of its own; it ran (S=1) in
    # every other stage's trials, and the best of those is the evidence we have for it.
    for stage in task.stages:
        largest = base[stage.name]
        if largest.model in out[stage.name]:
            continue
        seen = [t.score or 0.0 for t in init if t.config[stage.name] == largest]
        if seen:
            out[stage.name][largest.model] = float(max(seen))
    return out


def preferred_models(task: Task, archive: Sequence[Trial]) -> tuple[dict[str, str], str]:
    """Insight 1: per stage, the best-scoring model; the smaller unless a larger one is clearly
    better."""
    margin = clear_margin(task)
    prefs: dict[str, str] = {}
    notes: list[str] = []
    for stage, scores in init_scores(task, archive).items():
        if not scores:
            continue
        params = {m.name: m.params or 0.0 for m in task.stage(stage).models}
        top = max(scores.values())
        close = [m for m, s in scores.items() if s >= top - margin + 1e-12]
        choice = min(close, key=lambda m: (params[m], m))
        prefs[stage] = choice
        listed = ", ".join(f"{m}={s:.3f}" for m, s in sorted(scores.items(), key=lambda x: -x[1]))
        notes.append(f"{stage}: {choice} (scores {listed}; larger must win by > {margin:.3f})")
    return prefs, "; ".join(notes)


def model_options(
    task: Task, archive: Sequence[Trial], prefs: dict[str, str], limit: int = 2
) -> dict[str, list[str]]:
    """Per stage, the models worth starting from: the preferred one, then any other whose initial
    score is within one training item of the best (a tie on a coarse split is no evidence)."""
    margin = clear_margin(task)
    scores = init_scores(task, archive)
    out: dict[str, list[str]] = {}
    for stage in task.stages:
        first = prefs.get(stage.name)
        if first is None:
            out[stage.name] = [stage.largest_model().name]
            continue
        own = scores.get(stage.name, {})
        top = max(own.values(), default=0.0)
        tied = [m for m, v in own.items() if m != first and v >= top - margin + 1e-12]
        tied.sort(key=lambda m: (-own[m], -(stage.model(m).params or 0.0), m))
        out[stage.name] = [first, *tied][:limit]
    return out


def ranked_models(
    task: Task, stage: Stage, archive: Sequence[Trial], prefs: dict[str, str]
) -> list[str]:
    """The stage's models, preferred first, then by initial score, then larger first."""
    scores = init_scores(task, archive).get(stage.name, {})
    first = prefs.get(stage.name)

    def key(m: str) -> tuple[int, float, float]:
        return (0 if m == first else 1, -scores.get(m, -1.0), -(stage.model(m).params or 0.0))

    return sorted(stage.model_names, key=key)


# ------------------------------------------------------------------------------------------------
# Helpers on configurations
# ------------------------------------------------------------------------------------------------


def with_stage(config: Config, stage: str, model: str, samples: int) -> Config:
    return Config.of({**config.root, stage: (model, int(samples))})


def max_samples_given(task: Task, config: Config, stage: Stage, model: str) -> int:
    """Largest S for `stage` on `model` that fits the budget with the other stages as in config."""
    others = sum(c for n, c in task.stage_costs(config).items() if n != stage.name)
    return stage.max_samples_for(model, task.budget - others)


def fit_budget(task: Task, config: Config, keep: str) -> Config | None:
    """Lower the other stages' S (costliest first) until the config fits; None if it can't."""
    current = config
    for _ in range(sum(s.max_samples for s in task.stages)):
        if task.cost(current) <= task.budget + 1e-9:
            return current
        costs = task.stage_costs(current)
        movable = [s for s in task.stages if s.name != keep and current[s.name].samples > 1]
        if not movable:
            return None
        s = max(movable, key=lambda st: (costs[st.name], st.name))
        sc = current[s.name]
        over = task.cost(current) - task.budget
        per = s.cost(sc.model, sc.samples) - s.cost(sc.model, sc.samples - 1)
        drop = max(1, math.ceil(over / per)) if per > 0 else 1
        current = with_stage(current, s.name, sc.model, max(1, sc.samples - drop))
    return current if task.cost(current) <= task.budget + 1e-9 else None


def geo_mid(a: int, b: int) -> int:
    """Rounded geometric midpoint of two sample counts (bisection in log-space)."""
    return round(math.sqrt(a * b))


def combined_start(task: Task, prefs: dict[str, str]) -> Config:
    """Each stage's preferred model (else its largest) at the S its budget share allows."""
    shares = task.budget_shares()
    out: dict[str, tuple[str, int]] = {}
    for s in task.stages:
        model = prefs.get(s.name) or s.largest_model().name
        out[s.name] = (model, max(1, s.max_samples_for(model, shares[s.name] * task.budget)))
    config = Config.of(out)
    fitted = fit_budget(task, config, keep="")
    return fitted or task.cheapest_config()


# ------------------------------------------------------------------------------------------------
# Moves around the incumbent
# ------------------------------------------------------------------------------------------------


def line_scores(
    task: Task, trials: Sequence[Trial], center: Config, stage: str
) -> dict[int, float]:
    """Scores along one stage's S with its model and every other stage as in `center`."""
    model = center[stage].model
    out: dict[int, float] = {}
    for t in scored(trials):
        if t.config[stage].model != model:
            continue
        if any(t.config[n] != center[n] for n in task.stage_names if n != stage):
            continue
        out[t.config[stage].samples] = max(out.get(t.config[stage].samples, -1.0), t.score or 0.0)
    return out


def sample_probes(
    task: Task, trials: Sequence[Trial], center: Config, stage: Stage, *, peaked: bool
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
    trials: Sequence[Trial],
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
            cfg = with_stage(center, stage.name, sc.model, s)
            if task.cost(cfg) <= task.budget + 1e-9:
                local.append(Move(cfg, 2 if peaked else 0, f"{stage.name}: S {sc.samples}->{s}"))
            elif trade:
                fitted = fit_budget(task, cfg, keep=stage.name)
                if fitted is not None:
                    traded.append(
                        Move(fitted, 3, f"{stage.name}: S {sc.samples}->{s}, others sample less")
                    )
            else:
                top = max_samples_given(task, center, stage, sc.model)
                if top > sc.samples:
                    local.append(
                        Move(
                            with_stage(center, stage.name, sc.model, top),
                            0,
                            f"{stage.name}: S {sc.samples}->{top} (fills the budget)",
                        )
                    )
        # Model swaps at about the same stage cost (insight 1's runner-up, or the search itself
        # when insight 1 is off).
        own = stage.cost(sc.model, sc.samples)
        for model in ranked_models(task, stage, trials, prefs):
            if model == sc.model:
                continue
            s = max(1, stage.max_samples_for(model, own))
            cfg = with_stage(center, stage.name, model, s)
            if task.cost(cfg) > task.budget + 1e-9:
                if not trade:
                    continue
                fitted = fit_budget(task, cfg, keep=stage.name)
                if fitted is None:
                    continue
                cfg = fitted
            swaps.append(Move(cfg, 1, f"{stage.name}: model {sc.model}->{model} at S={s}"))
        # Insight 3: a stronger upstream model, downstream sampling less.
        if trade and i < len(stages) - 1:
            params = stage.model(sc.model).params or 0.0
            stronger = [m for m in stage.models if (m.params or 0.0) > params and m.kind == "llm"]
            for m in sorted(stronger, key=lambda m: m.params or 0.0)[:1]:
                cfg = with_stage(center, stage.name, m.name, sc.samples)
                down = stages[i + 1]
                dsc = center[down.name]
                cfg = with_stage(cfg, down.name, dsc.model, max(1, dsc.samples // 2))
                fitted = fit_budget(task, cfg, keep=stage.name)
                if fitted is not None:
                    traded.append(
                        Move(
                            fitted, 3, f"{stage.name}: stronger {m.name}; {down.name} samples less"
                        )
                    )
    # Interleave so each stage and each kind of move gets an early slot.
    ordered = _interleave(local, traded)
    return _interleave(ordered, swaps) if flat or 1 in no else ordered + swaps


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
        if cfg != center and task.cost(cfg) <= task.budget + 1e-9:
            out.append(Move(cfg, 2, f"every stage's S x{f:g}"))
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
            cfg = with_stage(center, st.name, sc.model, top)
            out.append(Move(cfg, 3, f"{st.name}: S {sc.samples}->{top} spends the leftover budget"))
    return out


def _features(x: np.ndarray, cross: bool) -> np.ndarray:
    """Quadratic design in log S: 1, x_i, x_i^2 and (with interdependence) x_i * x_j."""
    cols = [np.ones(len(x)), *x.T, *(x.T**2)]
    if cross:
        k = x.shape[1]
        cols += [x[:, i] * x[:, j] for i in range(k) for j in range(i + 1, k)]
    return np.stack(cols, axis=1)


def surrogate_moves(
    task: Task, trials: Sequence[Trial], combos: Sequence[Config], trade: bool, limit: int = 4
) -> list[Move]:
    """Insight 2 as a response surface: per model combination, the score is fitted as a concave-
    shaped quadratic in each stage's log S (with cross terms when stages interdepend, insight 3),
    and the best unseen configurations within budget under that fit are proposed. A coarse
    training split scores in whole items, so neighbouring configurations tie; the fit reads the
    trend through the ties and points inside the plateau, where single probes see nothing."""
    names = task.stage_names
    seen = {t.config.key() for t in trials}
    out: list[Move] = []
    for combo in combos:
        models = [combo[n].model for n in names]
        rows = [
            t
            for t in scored(trials)
            if all(t.config[n].model == m for n, m in zip(names, models, strict=True))
        ]
        x = np.log([[t.config[n].samples for n in names] for t in rows], dtype=float)
        if len(rows) < 2 * len(names) + 2:
            continue
        design = _features(x.reshape(len(rows), len(names)), trade)
        if len(rows) < design.shape[1] + 1:
            continue
        y = np.array([t.score or 0.0 for t in rows])
        reg = 1e-3 * np.eye(design.shape[1])
        reg[0, 0] = 0.0
        coef = np.linalg.solve(design.T @ design + reg, design.T @ y)
        grids = []
        for k, (n, m) in enumerate(zip(names, models, strict=True)):
            st = task.stage(n)
            cap = st.max_samples
            # Trust region: a quadratic is read only where this combination has been observed.
            lo, hi = float(np.exp(x[:, k].min())), float(np.exp(x[:, k].max()))
            values = sorted(
                v
                for v in set(range(1, min(cap, 16) + 1))
                | {round(float(v)) for v in np.geomspace(1, cap, 48)}
                if lo - 1e-9 <= v <= hi + 1e-9
            )
            grids.append((np.array(values), np.array([st.cost(m, v) for v in values])))
        mesh = np.meshgrid(*(g[0] for g in grids), indexing="ij")
        cost = sum(np.meshgrid(*(g[1] for g in grids), indexing="ij"))
        s_all = np.stack([m.ravel() for m in mesh], axis=1)
        ok = cost.ravel() <= task.budget + 1e-9
        s_ok = s_all[ok]
        if not len(s_ok):
            continue
        pred = _features(np.log(s_ok.astype(float)), trade) @ coef
        taken = 0
        for i in np.argsort(-pred, kind="stable"):
            cfg = Config.of(
                {n: (m, int(v)) for n, m, v in zip(names, models, s_ok[i], strict=True)}
            )
            if cfg.key() in seen:
                continue
            seen.add(cfg.key())
            out.append(Move(cfg, 2, f"response surface of {combo.short()} peaks here"))
            taken += 1
            if taken >= limit:
                break
    return out


def top_centers(task: Task, trials: Sequence[Trial], limit: int = 3) -> list[Config]:
    """The distinct configurations at the best search score: on a coarse split a tie is a
    plateau, and the optimum is as likely near any of its members."""
    pool = [t for t in scored(trials) if t.phase == "search"]
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


def scores_flat(task: Task, trials: Sequence[Trial]) -> bool:
    """The archive's top scores vary little, or the last iteration found nothing better: explore."""
    pool = [t for t in scored(trials) if t.phase == "search"]
    if len(pool) < 2:
        return False
    last = max(t.iteration for t in pool)
    before = [t.score or 0.0 for t in scored(trials) if t.iteration < last]
    now = [t.score or 0.0 for t in pool if t.iteration == last]
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
            out[stage.name] = type(sc)(model=model, samples=s)
        cfg = Config(out)
        if task.cost(cfg) <= task.budget + 1e-9:
            yield cfg


# ------------------------------------------------------------------------------------------------
# The proposer
# ------------------------------------------------------------------------------------------------


class InsightProposer(Proposer):
    name = "insight"
    uses_preference_init = True

    def _prefs(self, ctx: ProposalContext) -> dict[str, str]:
        if 1 in self.settings.no_insights:
            return {}
        valid = {
            s: m
            for s, m in (ctx.preferences or {}).items()
            if s in ctx.task.stage_names and m in ctx.task.stage(s).model_names
        }
        if len(valid) == len(ctx.task.stages):
            return valid
        computed, _ = preferred_models(ctx.task, ctx.archive)
        return {**computed, **valid}

    def summarize_preferences(self, ctx: ProposalContext) -> Preferences | None:
        if 1 in self.settings.no_insights:
            return None
        prefs, notes = preferred_models(ctx.task, ctx.archive)
        return Preferences(models=prefs, notes=notes) if prefs else None

    def _plan(self, ctx: ProposalContext) -> tuple[Config, Config, bool, dict[str, str]]:
        task, trials = ctx.task, ctx.archive
        prefs = self._prefs(ctx)
        start = combined_start(task, prefs)
        searched = [t for t in scored(trials) if t.phase == "search"]
        best = best_trial(trials)
        center = best.config if (searched and best is not None) else start
        return start, center, scores_flat(task, trials), prefs

    def guidelines(self, ctx: ProposalContext) -> Guidelines | None:
        _, center, flat, prefs = self._plan(ctx)
        task = ctx.task
        lines = [
            "Preferred models (insight 1): "
            + (", ".join(f"{s}={m}" for s, m in prefs.items()) or "none (searched by swaps)"),
            f"Incumbent: {center.short()} (cost {task.cost(center):.1f} of {task.budget:g})",
        ]
        for stage in ctx.task.stages:
            probes, closed = sample_probes(
                ctx.task, ctx.archive, center, stage, peaked=2 not in self.settings.no_insights
            )
            tried = sorted(line_scores(ctx.task, ctx.archive, center, stage.name).items())
            seen = ", ".join(f"S={s}:{v:.3f}" for s, v in tried) or "nothing yet"
            state = "bracket closed" if closed else f"next S {probes}"
            lines.append(f"{stage.name} on {center[stage.name].model}: {seen}; {state}")
        if flat:
            lines.append(
                "Scores vary little or stopped improving: explore model swaps and wider jumps."
            )
        return Guidelines(text="\n".join(lines))

    def propose(self, ctx: ProposalContext) -> Proposal:
        task, trials = ctx.task, ctx.archive
        _, center, flat, prefs = self._plan(ctx)
        no = self.settings.no_insights
        seen = set(archived_keys(trials)) | {
            t.config.key() for t in trials if t.status == "rejected"
        }
        picked: list[Config] = []
        reasons: list[str] = []

        def take(cfg: Config, why: str) -> None:
            if len(picked) >= ctx.batch_size or cfg.key() in seen or task.config_problems(cfg):
                return
            seen.add(cfg.key())
            picked.append(cfg)
            reasons.append(why)

        starts = start_configs(task, model_options(task, trials, prefs))
        centers = top_centers(task, trials) or starts
        for cfg in starts:
            take(cfg, "preferred models combined at their budget shares")
        if 2 not in no:
            for move in surrogate_moves(task, trials, centers[:2], 3 not in no):
                take(move.config, move.why)
        per_center = [
            fill_moves(task, c, 3 not in no)
            + joint_scales(task, c, 2 not in no)
            + candidate_moves(task, trials, c, prefs, no, flat)
            + joint_scales(task, c, 2 not in no, factors=(0.71,))
            for c in centers
        ]
        for k in range(max((len(m) for m in per_center), default=0)):
            for moves in per_center:
                if k < len(moves):
                    take(moves[k].config, moves[k].why)
        if len(picked) < ctx.batch_size:
            rng = random.Random(f"{self.settings.seed}:{ctx.iteration}:{center.key()}")
            for cfg in neighbourhood(task, center, rng):
                take(cfg, "exploration near the incumbent")
                if len(picked) >= ctx.batch_size:
                    break
        rationale = f"around {center.short()}: " + "; ".join(reasons)
        return Proposal(configs=picked, rationale=rationale)
