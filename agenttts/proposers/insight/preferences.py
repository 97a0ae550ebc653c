"""Insight 1: the paper's initial trials, and the model each stage prefers from their scores.

`preference_configs` and `init_scores` are two halves of one design: the scores are read back from
exactly the trials the configurations describe (other stages on their largest model at S=1).
`progressive_configs` draws the same lines progressively (see `InsightProposer`): every model of a
stage starts at an eighth of its share's count and doubles, round by round, while it can still win.
"""

from __future__ import annotations

from agenttts.archive import Archive
from agenttts.derived import held_by
from agenttts.environment.emulated_cache import draws_new, held_samples, hold, new_cost
from agenttts.environment.space import (
    BUDGET_TOLERANCE,
    Config,
    fewest_samples,
    largest_single_sample_config,
    max_samples_for,
    snap_samples,
    stage_costs,
)
from agenttts.environment.task import Stage, Task

#: Doublings from a progressive line's first count up to the paper's (its share's count): the
#: first round draws at least an eighth of it.
DOUBLINGS = 3
#: A line is drawn progressively only where its samples are worth saving: at the paper's count
#: its stage costs at least this share of the budget (cheaper lines are drawn at once: a round
#: more costs a trial and saves next to nothing).
MATERIAL_SHARE = 0.25


def preference_configs(task: Task) -> list[tuple[Config, str]]:
    """The initial trials with why each was chosen; infeasible ones are left out.

    For each stage: the other stages run their largest model with one sample; every model of this
    stage runs at the largest sample count its share of the budget allows. A stage's samples are
    also capped by what the other stages leave of the total, so every configuration returned fits
    the budget; a model too large for its share even with one sample still gets that one sample
    when the total allows it.
    """
    shares = task.budget_shares()
    return [
        (
            config,
            f"initialisation by model preference: stage {stage} with {model} at "
            f"{config[stage].samples} samples ({shares[stage]:.0%} of the budget), other stages "
            "at their largest model with one sample",
        )
        for stage, model, config in initial_lines(task)
    ]


def initial_lines(task: Task) -> list[tuple[str, str, Config]]:
    """(stage, model, configuration) of each initial trial of `preference_configs`."""
    shares = task.budget_shares()
    base = largest_single_sample_config(task)
    out: list[tuple[str, str, Config]] = []
    for stage in task.stages:
        others = sum(c for name, c in stage_costs(task, base).items() if name != stage.name)
        allowance = min(shares[stage.name] * task.budget, task.budget - others)
        for model in stage.model_names:
            samples = max_samples_for(stage, model, allowance)
            if samples < 1 and stage.cost(model, 1) <= task.budget - others + BUDGET_TOLERANCE:
                samples = 1  # over its share even alone, yet within the budget: try it once
            if samples < 1:
                continue
            out.append((stage.name, model, base.with_stage(stage.name, model, samples)))
    return out


def progressive_configs(task: Task, archive: Archive) -> list[tuple[Config, str]]:
    """The next round of the progressive initialisation ([] once it is complete), cheapest
    evidence first (`by_new_cost`).

    The lines are the paper's (`initial_lines`: one stage's model varied, the others on their
    largest model with one sample), each capped at the paper's count. The first round runs every
    line at its first count (`first_count`); each later round doubles the lines still worth it
    (`extends`), paying only the new sample indexes."""
    lines = initial_lines(task)
    out: list[tuple[Config, str]] = []
    if not archive.scored().in_phase("init"):
        for stage, model, top in lines:
            first = first_count(task, stage, top)
            config = top.with_stage(stage, model, first)
            if any(c == config for c, _ in out):
                continue  # the base configuration starts every stage's largest-model line
            out.append(
                (
                    config,
                    f"progressive initialisation: stage {stage} with {model} at {first} samples "
                    f"(doubling towards {top[stage].samples} while it can still win), other "
                    "stages at their largest model with one sample",
                )
            )
    else:
        for stage, model, top in lines:
            nxt = extends(task, archive, stage, model, top)
            if nxt is not None:
                why = f"progressive initialisation: stage {stage} with {model}, S doubled to {nxt}"
                out.append((top.with_stage(stage, model, nxt), why))
    return by_new_cost(task, archive, out)


def first_count(task: Task, stage: str, top: Config) -> int:
    """Where a line starts: the fewest samples, halving from the paper's count (`top`) at most
    `DOUBLINGS` times, at which a doubling costs no more in what it draws again (the prompt's
    share, a downstream stage whose input changed: `new_cost`) than in the new samples
    themselves. Below that, doubling would cost more than drawing the paper's count at once;
    a line whose stage costs less than `MATERIAL_SHARE` of the budget starts at the paper's."""
    st, model, most = task.stage(stage), top[stage].model, top[stage].samples
    first = most
    if st.cost(model, most) < MATERIAL_SHARE * task.budget:
        return first
    for j in range(1, DOUBLINGS + 1):
        s = snap_samples(st, most / 2**j, "down")
        twice = snap_samples(st, 2 * s, "up")
        if s < fewest_samples(st, model) or twice <= s or s >= first:
            break
        step = new_cost(
            task,
            held_samples(task, [top.with_stage(stage, model, s)]),
            top.with_stage(stage, model, twice),
        )
        if step > 2 * (st.cost(model, twice) - st.cost(model, s)):
            break
        first = s
    return first


def by_new_cost(
    task: Task, archive: Archive, planned: list[tuple[Config, str]]
) -> list[tuple[Config, str]]:
    """`planned` reordered so that each next one brings the most scored configurations per unit
    of new cost (`new_cost`, given the archive and the ones before it): a trial whose last stage
    draws S samples answers S configurations (free evaluations), any other one. Initial trials
    are equally promising, so the cheaper evidence comes first."""
    held = held_by(task, archive)
    last = task.stages[-1]
    # what the archive holds in full comes back as free evaluations: not run
    left = [p for p in planned if draws_new(task, held, p[0])]
    out: list[tuple[Config, str]] = []
    while left:

        def price(item: tuple[Config, str]) -> float:
            c = item[0]
            answers = c[last.name].samples if last.model(c[last.name].model).kind == "llm" else 1
            return new_cost(task, held, c) / answers

        pick = min(left, key=price)
        left.remove(pick)
        out.append(pick)
        hold(task, held, pick[0])
        left = [p for p in left if draws_new(task, held, p[0])]
    return out


def extends(task: Task, archive: Archive, stage: str, model: str, top: Config) -> int | None:
    """The count to extend one initial line to next, or None: it reached the paper's count
    (`top`), its curve peaked (the last doubling gained nothing: insight 2's single peak), or it
    cannot win (another model of the stage already scores more, at no more cost, than this one
    could reach by doubling again: a concave curve in log S gains at most what its last doubling
    gained, plus one item's worth for noise)."""
    st = task.stage(stage)
    line = archive.scores_along(top.with_stage(stage, model, top[stage].samples), stage)
    drawn = [
        t.config[stage].samples
        for t in archive.executed().scored().in_phase("init")
        if t.config[stage].model == model and _on_line(task, t.config, top, stage)
    ]
    if not drawn or not line:
        return None  # never ran (screened out, or failed): nothing to extend
    s_top = max(drawn)
    if s_top >= top[stage].samples:
        return None
    half = [v for s, v in line.items() if s <= s_top // 2]
    if half and max(v for s, v in line.items() if s_top // 2 < s <= s_top) <= max(half):
        return None  # the last doubling gained nothing: peaked
    nxt = min(top[stage].samples, snap_samples(st, 2 * s_top, "up"))
    below = [s for s in line if s <= s_top // 2]
    if below:
        gain = max(0.0, line[s_top] - line[max(below)])
        bound = line[s_top] + gain + clear_margin(task)
        cost = st.cost(model, nxt)
        for other in st.model_names:
            if other == model:
                continue
            other_line = top.with_stage(stage, other, fewest_samples(st, other))
            seen = archive.scores_along(other_line, stage)
            if any(v > bound and st.cost(other, s) <= cost for s, v in seen.items()):
                return None
    return nxt


def _on_line(task: Task, config: Config, top: Config, stage: str) -> bool:
    return all(config[o] == top[o] for o in task.stage_names if o != stage)


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
