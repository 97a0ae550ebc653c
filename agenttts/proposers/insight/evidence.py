"""The insight proposer's numbers, written for an agent's prompt (the `{evidence}` placeholder of
`prompts/proposal.txt`, filled when `hybrid_agent` is on).

Per stage, on the incumbent's model with every other stage as in the incumbent (the best trial so
far): the scores seen along that stage's sample count, the count the fitted response surface puts
its peak at (insight 2: each stage has an optimal S), and the marginal gain per budget unit there
(insight 3: the next unit of budget belongs where it gains most). The agent gets the same fits the
insight proposer searches with, as numbers it can reason from, not as orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agenttts.archive import Archive
from agenttts.environment.space import Config, max_samples_given, neighbour_samples
from agenttts.environment.task import Stage, Task
from agenttts.proposers.insight.moves import line_scores
from agenttts.proposers.insight.surface import Fit, fit_surface


@dataclass(frozen=True)
class StageEvidence:
    stage: str
    model: str
    samples: int  # the incumbent's
    seen: dict[int, float]  # S -> best score with every other stage as in the incumbent
    best_samples: int | None  # where the fit (else what was seen) peaks; None: nothing seen
    fitted: bool  # best_samples and gain come from the response surface
    gain_per_unit: float | None  # score per budget unit from the incumbent's S one count up

    def line(self) -> str:
        seen = ", ".join(f"S={s}: {v:.3f}" for s, v in sorted(self.seen.items()))
        out = f"- {self.stage} on {self.model} (now S={self.samples}): scores {seen or 'none'}"
        if self.best_samples is not None:
            how = "fitted" if self.fitted else "seen"
            out += f"; best S {how}: {self.best_samples}"
        if self.gain_per_unit is not None:
            out += (
                f"; marginal gain {self.gain_per_unit:+.5f} per budget unit above S={self.samples}"
            )
        return out


def _along(task: Task, fit: Fit, center: Config, stage: Stage) -> tuple[list[int], np.ndarray]:
    """The fit read along one stage's allowed counts inside its trusted range, others fixed."""
    k = task.stage_names.index(stage.name)
    counts = [s for s in stage.sample_counts if fit.low[k] - 1e-9 <= s <= fit.high[k] + 1e-9]
    rows = np.array([[center[n].samples for n in task.stage_names] for _ in counts], dtype=float)
    rows[:, k] = counts
    return counts, fit.predict(rows) if counts else np.zeros(0)


def _per_unit(rise: float, stage: Stage, model: str, low: int, high: int) -> float | None:
    """A score change per budget unit from `low` to `high` samples; None when the samples cost
    nothing more (the formula floors small models at 0): no price, so no marginal to quote."""
    extra = stage.cost(model, high) - stage.cost(model, low)
    return rise / extra if extra > 0 else None


def stage_evidence(task: Task, archive: Archive, *, cross: bool = True) -> list[StageEvidence]:
    """Each stage's evidence around the incumbent; empty before any trial scored."""
    best = archive.best()
    if best is None:
        return []
    center = best.config
    fit = fit_surface(task, archive, center, cross)
    out: list[StageEvidence] = []
    for stage in task.stages:
        sc = center[stage.name]
        seen = line_scores(task, archive, center, stage.name)
        peak: int | None = max(seen, key=lambda s: (seen[s], -s)) if seen else None
        gain: float | None = None
        fitted = False
        up = neighbour_samples(stage, sc.samples, 1)
        room = max_samples_given(task, center, stage, sc.model)
        if fit is not None:
            counts, pred = _along(task, fit, center, stage)
            if counts:
                peak, fitted = counts[int(np.argmax(pred))], True
                if up is not None and sc.samples in counts and up in counts:
                    rise = float(pred[counts.index(up)] - pred[counts.index(sc.samples)])
                    gain = _per_unit(rise, stage, sc.model, sc.samples, up)
        above = [s for s in seen if s > sc.samples]
        if gain is None and above and sc.samples in seen:  # the nearest count seen above
            nxt = min(above)
            gain = _per_unit(seen[nxt] - seen[sc.samples], stage, sc.model, sc.samples, nxt)
        if up is None or up > room:
            gain = None  # one more sample does not fit the budget: no marginal to speak of
        out.append(StageEvidence(stage.name, sc.model, sc.samples, seen, peak, fitted, gain))
    return out


def evidence_text(task: Task, archive: Archive) -> str:
    """The evidence block of the agent's proposal prompt ("" before any trial scored)."""
    rows = stage_evidence(task, archive)
    if not rows:
        return ""
    best = archive.best()
    assert best is not None
    head = (
        f"Numbers from the trials so far (the insight proposer's fits around the best trial "
        f"#{best.trial_id}, {best.config.short()}; other stages as in it):"
    )
    return "\n".join([head, *(r.line() for r in rows)])
