"""The task and the archive as compact text for an LLM proposer's prompt.

Shared by every LLM proposer (AgentTTS, AgentHPO, MLCopilot) so they all see the same evidence.
Small agent models have small contexts, so the archive view is bounded: the best trials, then the
latest iteration's (including rejected proposals with their reasons), never the whole log.
"""

from __future__ import annotations

from collections.abc import Sequence

from agenttts.archive import Trial, best_trial, scored
from agenttts.environment.budget import M_UNIT, ND_UNIT, NP_UNIT
from agenttts.environment.task import Config, Task


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
        lines.append(
            f"- {s.name}{desc}: Np={s.prompt_tokens}, Nd={s.gen_tokens}, samples 1..{s.max_samples}"
        )
        for m in s.models:
            if m.kind != "llm":
                lines.append(
                    f"    {m.name}: {m.kind} retriever, cost {s.cost(m.name, 1):.1f}, S=1 only"
                )
                continue
            one = s.cost(m.name, 1)
            step = s.cost(m.name, 2) - one
            top = s.max_samples_for(m.name, task.budget - _others_floor(task, s.name))
            lines.append(
                f"    {m.name} ({_params(m.params)}): S=1 costs {one:.1f}, each extra sample "
                f"+{step:.2f}; at most S={top} with the other stages at their cheapest"
                if top
                else f"    {m.name} ({_params(m.params)}): S=1 costs {one:.1f} (over the budget)"
            )
    return "\n".join(lines)


def _others_floor(task: Task, stage: str) -> float:
    return sum(min(c for *_, c in task.stage_options(s)) for s in task.stages if s.name != stage)


def config_text(config: Config) -> str:
    return ", ".join(f"{k}={v.model} x{v.samples}" for k, v in config.items())


def trial_line(t: Trial) -> str:
    head = f"#{t.trial_id} it{t.iteration} {config_text(t.config)}"
    if t.status == "rejected":
        return f"{head} | REJECTED: {t.error}"
    if t.status == "failed":
        return f"{head} | cost {t.nominal_cost:.1f} | FAILED: {(t.error or '')[:160]}"
    score = "n/a" if t.score is None else f"{t.score:.4f}"
    return f"{head} | score {score} | cost {t.nominal_cost:.1f}"


def archive_rows(trials: Sequence[Trial], *, max_rows: int = 24) -> list[Trial]:
    """What the agent sees: best executed trials first, then the latest iteration's others."""
    pool = [t for t in trials if t.phase != "test"]
    if not pool:
        return []
    ranked = sorted(scored(pool), key=lambda t: (-(t.score or 0.0), t.nominal_cost, t.trial_id))
    last = max(t.iteration for t in pool)
    recent = [t for t in pool if t.iteration == last and t not in ranked[: max_rows // 2]]
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


def archive_text(trials: Sequence[Trial], *, max_rows: int = 24) -> str:
    """The bounded archive view plus a one-line summary (count, best, spread of the top scores)."""
    rows = archive_rows(trials, max_rows=max_rows)
    if not rows:
        return "(no trials yet)"
    pool = [t for t in trials if t.phase != "test"]
    ok = scored(pool)
    best = best_trial(pool)
    top = sorted((t.score or 0.0 for t in ok), reverse=True)[:5]
    summary = (
        f"{len(ok)} scored, {sum(t.status == 'failed' for t in pool)} failed, "
        f"{sum(t.status == 'rejected' for t in pool)} rejected"
    )
    if best is not None:
        summary += f"; best {best.score:.4f} (#{best.trial_id})"
    if len(top) >= 2:
        summary += f"; top-{len(top)} scores span {top[0] - top[-1]:.4f}"
    shown = "" if len(rows) == len(pool) else f" (showing {len(rows)} of {len(pool)})"
    return "\n".join([summary + shown, *(trial_line(t) for t in rows)])


def score_spread(trials: Sequence[Trial], top: int = 5) -> float | None:
    """Spread of the best `top` scores: small means the archive cannot tell them apart."""
    scores = sorted((t.score or 0.0 for t in scored(trials)), reverse=True)[:top]
    return scores[0] - scores[-1] if len(scores) >= 2 else None
