"""Insight 1: the paper's initial trials, and the model each stage prefers from their scores.

`preference_configs` and `init_scores` are two halves of one design: the scores are read back from
exactly the trials the configurations describe (other stages on their largest model at S=1).
"""

from __future__ import annotations

from agenttts.archive import Archive
from agenttts.environment.space import (
    BUDGET_TOLERANCE,
    Config,
    largest_single_sample_config,
    max_samples_for,
    stage_costs,
)
from agenttts.environment.task import Stage, Task


def preference_configs(task: Task) -> list[tuple[Config, str]]:
    """The initial trials with why each was chosen; infeasible ones are left out.

    For each stage: the other stages run their largest model with one sample; every model of this
    stage runs at the largest sample count its share of the budget allows. A stage's samples are
    also capped by what the other stages leave of the total, so every configuration returned fits
    the budget; a model too large for its share even with one sample still gets that one sample
    when the total allows it.
    """
    shares = task.budget_shares()
    base = largest_single_sample_config(task)
    out: list[tuple[Config, str]] = []
    for stage in task.stages:
        others = sum(c for name, c in stage_costs(task, base).items() if name != stage.name)
        allowance = min(shares[stage.name] * task.budget, task.budget - others)
        for model in stage.model_names:
            samples = max_samples_for(stage, model, allowance)
            if samples < 1 and stage.cost(model, 1) <= task.budget - others + BUDGET_TOLERANCE:
                samples = 1  # over its share even alone, yet within the budget: try it once
            if samples < 1:
                continue
            config = base.with_stage(stage.name, model, samples)
            out.append(
                (
                    config,
                    f"initialisation by model preference: stage {stage.name} with {model} at "
                    f"{samples} samples ({shares[stage.name]:.0%} of the budget), other stages at "
                    "their largest model with one sample",
                )
            )
    return out


def clear_margin(task: Task) -> float:
    """How much better a larger model must score to be preferred: one training item's worth."""
    return max(0.01, 1.0 / max(1, task.data.train_size))


def init_scores(task: Task, archive: Archive) -> dict[str, dict[str, float]]:
    """Per stage, per model: the score of the initialisation trial that varied only this stage."""
    base = largest_single_sample_config(task)
    out: dict[str, dict[str, float]] = {s.name: {} for s in task.stages}
    best_s: dict[tuple[str, str], int] = {}
    init = archive.scored().in_phase("init")
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


def preferred_models(task: Task, archive: Archive) -> tuple[dict[str, str], str]:
    """Per stage, the best-scoring model; the smaller unless a larger one is clearly better."""
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
    task: Task, archive: Archive, prefs: dict[str, str], limit: int = 2
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


def ranked_models(task: Task, stage: Stage, archive: Archive, prefs: dict[str, str]) -> list[str]:
    """The stage's models, preferred first, then by initial score, then larger first."""
    scores = init_scores(task, archive).get(stage.name, {})
    first = prefs.get(stage.name)

    def key(m: str) -> tuple[int, float, float]:
        return (0 if m == first else 1, -scores.get(m, -1.0), -(stage.model(m).params or 0.0))

    return sorted(stage.model_names, key=key)
