"""The task and the archive as compact text for an LLM proposer's prompt.

Shared by every LLM proposer (AgentTTS, AgentHPO, MLCopilot) so they all see the same evidence.
Small agent models have small contexts, so the archive view is bounded: the best trials, then the
latest iteration's (including rejected proposals with their reasons), never the whole log.
"""

from __future__ import annotations

from collections.abc import Sequence

from agenttts.archive import Archive, Trial
from agenttts.derived import held_by
from agenttts.environment.budget import M_UNIT, ND_UNIT, NP_UNIT
from agenttts.environment.emulated_cache import new_cost
from agenttts.environment.space import Config, config_cost, max_samples_for, stage_options
from agenttts.environment.task import Task


def _params(p: float | None) -> str:
    if not p:
        return "no LLM"
    return f"{p / 1e9:g}B" if p >= 1e9 else f"{p / 1e6:g}M"


def task_text(task: Task) -> str:
    """Stages, model choices with sizes and costs, the budget and the cost formula."""
    lines = [f"Task: {task.name}" + (f" - {task.description.strip()}" if task.description else "")]
    lines.append(
        f"Budget: {task.budget:g} units per query. Cost of a stage running model M "
        f"(parameters) with S samples: ((M / {M_UNIT / 1e9:g}e9) * (Np + S * Nd) - {NP_UNIT}) / "
        f"{ND_UNIT}, at least 0; a configuration's cost is the sum over its stages."
    )
    lines.append(f"Metric to maximise: {task.main_metric}. Stages, in pipeline order:")
    for s in task.stages:
        desc = f" ({s.description.strip()})" if s.description else ""
        counts = (
            "samples one of " + ", ".join(map(str, s.samples))
            if s.samples
            else f"samples 1..{s.max_samples}"
        )
        lines.append(f"- {s.name}{desc}: Np={s.prompt_tokens}, Nd={s.gen_tokens}, {counts}")
        for m in s.models:
            if m.kind != "llm":
                lines.append(
                    f"    {m.name}: {m.kind} retriever, cost {s.cost(m.name, 1):.1f}, S=1 only"
                )
                continue
            one = s.cost(m.name, 1)
            step = s.cost(m.name, 2) - one
            top = max_samples_for(s, m.name, task.budget - _others_floor(task, s.name))
            np_, nd = s.lengths(m.name)
            own = f", its own Np={np_}, Nd={nd}" if m.prompt_tokens or m.gen_tokens else ""
            lines.append(
                f"    {m.name} ({_params(m.params)}{own}): S=1 costs {one:.1f}, each extra "
                f"sample +{step:.2f}; at most S={top} with the other stages at their cheapest"
                if top
                else f"    {m.name} ({_params(m.params)}{own}): S=1 costs {one:.1f} (over the "
                "budget)"
            )
    return "\n".join(lines)


def _others_floor(task: Task, stage: str) -> float:
    return sum(min(c for *_, c in stage_options(s)) for s in task.stages if s.name != stage)


def config_text(config: Config) -> str:
    return ", ".join(f"{k}={v.model} x{v.samples}" for k, v in config.items())


def trial_line(t: Trial) -> str:
    head = f"#{t.trial_id} it{t.iteration} {config_text(t.config)}"
    if t.status == "rejected":
        return f"{head} | REJECTED: {t.error}"
    if t.status == "failed":
        return f"{head} | cost {t.nominal_cost:.1f} | FAILED: {(t.error or '')[:160]}"
    score = "n/a" if t.score is None else f"{t.score:.4f}"
    if t.fidelity < 1.0:  # dropped from a race: an estimate from a share of the items
        score += f" (partial: {t.items_evaluated} of {t.split_size} items, dropped from the race)"
    return f"{head} | score {score} | cost {t.nominal_cost:.1f}"


def visible_trials(archive: Archive, *, max_rows: int = 24) -> list[Trial]:
    """What the agent sees: best executed trials first, then the latest iteration's others.
    Derived (free) evaluations are many and alike: the agent sees them as curves
    (`curves_text`), not as rows."""
    if not archive:
        return []
    ranked = [t for t in archive.ranked() if t.derived_from is None]
    last = max(t.iteration for t in archive)
    recent = [
        t
        for t in archive.in_iteration(last)
        if t.derived_from is None and t not in ranked[: max_rows // 2]
    ]
    recent = sorted(recent, key=lambda t: t.trial_id)
    chosen: list[Trial] = []
    ids: set[int] = set()
    for t in [*ranked[: max_rows // 2], *recent[: max_rows // 4], *ranked[max_rows // 2 :]]:
        if len(chosen) >= max_rows:
            break
        if t.trial_id not in ids:
            ids.add(t.trial_id)
            chosen.append(t)
    return chosen


def archive_text(archive: Archive, *, max_rows: int = 24) -> str:
    """The bounded archive view plus a one-line summary (count, best, spread of the top scores)."""
    rows = visible_trials(archive, max_rows=max_rows)
    if not rows:
        return "(no trials yet)"
    best = archive.best()
    executed = archive.executed()
    top = sorted(executed.full().scores(), reverse=True)[:5]
    partial = len(executed.scored()) - len(executed.full().scored())
    free = len(archive.derived())
    summary = (
        f"{len(executed.scored())} scored"
        + (f" ({partial} partial: dropped from a race)" if partial else "")
        + f", {len(archive.failed())} failed, {len(archive.rejected())} rejected"
        + (f", {free} more scored free from their samples (see the curves)" if free else "")
    )
    if best is not None:
        summary += f"; best {best.score:.4f} (#{best.trial_id}"
        summary += (
            f", free from #{best.derived_from}: {config_text(best.config)})"
            if (best.derived_from is not None)
            else ")"
        )
    if len(top) >= 2:
        summary += f"; top-{len(top)} scores span {top[0] - top[-1]:.4f}"
    listed = len(archive) - free
    shown = "" if len(rows) == listed else f" (showing {len(rows)} of {listed})"
    return "\n".join([summary + shown, *(trial_line(t) for t in rows)])


#: Points of a curve shown: enough to see where it peaks, few enough for a small context.
CURVE_POINTS = 8


def curves_text(archive: Archive, *, max_curves: int = 8) -> str:
    """Score by sample count per stage and model (`Archive.curves`), which free evaluations
    fill in: insight 2's evidence, a line per curve ("" without free evaluations, or without a
    curve of 3 points or more).
    Long curves are thinned to doubling counts, keeping the first, the last and the peak."""
    if not archive.derived():  # free evaluations off: the paper's prompt as it was
        return ""
    curves = [c for c in archive.curves() if len(c.scores) >= 3][:max_curves]
    if not curves:
        return ""
    lines = ["Score by sample count (each line: one stage on one model, other stages as named):"]
    for c in curves:
        counts = sorted(c.scores)
        keep = {counts[0], counts[-1], c.peak}
        keep |= {s for s in counts if s & (s - 1) == 0}  # powers of two
        shown = sorted(keep)
        if len(shown) > CURVE_POINTS:
            step = len(shown) / (CURVE_POINTS - 1)
            shown = sorted({shown[round(i * step)] for i in range(CURVE_POINTS - 1)} | {c.peak})
        points = " ".join(f"{s}:{c.scores[s]:.3f}" for s in shown)
        others = ", ".join(
            f"{n}={v.model} x{v.samples}" for n, v in c.through.config.items() if n != c.stage
        )
        lines.append(
            f"- {c.stage} on {c.model} ({others or 'one stage'}): S {points}; peak S={c.peak}"
        )
    return "\n".join(lines)


def new_costs_text(task: Task, archive: Archive, candidates: Sequence[Config]) -> str:
    """What each candidate would newly cost given the samples the archive drew
    (`emulated_cache.new_cost`, the insight proposer's tie-breaker too), beside its nominal
    cost; "" without candidates."""
    if not candidates:
        return ""
    held = held_by(task, archive)
    lines = [
        "What candidate configurations would newly cost per query: samples already drawn on the "
        "same model after the same earlier stages are not paid again, and a configuration they "
        "answer in full costs nothing and is scored free. Between equally promising "
        "configurations, prefer the one that costs less new:"
    ]
    for c in candidates:
        lines.append(
            f"- {config_text(c)}: new {new_cost(task, held, c):.1f} of {config_cost(task, c):.1f}"
        )
    return "\n".join(lines)
