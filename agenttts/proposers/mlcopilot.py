"""MLCopilot-style baseline (arXiv 2304.14979): retrieved experience plus distilled knowledge,
then the top-k configurations from one few-shot prompt.

MLCopilot keeps an experience pool of solved tasks, distils it into knowledge with the LLM, and for
a new task retrieves the most similar experiences and asks once for the best configurations. Here
the experience pool is this search's archive: the knowledge is distilled at the start of every
iteration (the graph's guidelines step, one call), the demonstrations are the executed trials
nearest to the incumbent best (same models, then log-distance in samples), ranked by score, and the
proposal is one call asking for the top `batch_size` configurations, best first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from agenttts.archive import Archive, Trial
from agenttts.environment.space import Config, derived_seed
from agenttts.environment.task import Task
from agenttts.errors import AgentError
from agenttts.llm import AgentUsage, Message
from agenttts.proposers.archive_view import config_text, task_text, trial_line
from agenttts.proposers.base import Guidelines, ProposalContext
from agenttts.proposers.llm_baseline import ANSWER_FORMAT, LLMBaseline

SYSTEM = (
    "You are MLCopilot, an assistant that suggests machine-learning configurations by learning "
    "from past experience: solved examples and the knowledge distilled from them."
)


def distance(task: Task, a: Config, b: Config) -> float:
    """How far apart two configurations are: 1 per stage with another model, plus the samples'
    log-distance scaled to [0, 1] per stage."""
    d = 0.0
    for s in task.stages:
        x, y = a[s.name], b[s.name]
        d += float(x.model != y.model)
        d += abs(math.log(x.samples) - math.log(y.samples)) / max(math.log(s.max_samples), 1.0)
    return d


def retrieve(task: Task, archive: Archive, k: int) -> list[Trial]:
    """The `k` executed trials nearest to the best one (itself first), ranked by score."""
    pool = archive.scored()
    best = pool.best()
    if best is None:
        return []
    near = sorted(pool, key=lambda t: (distance(task, t.config, best.config), t.trial_id))[:k]
    return sorted(near, key=lambda t: (-(t.score or 0.0), t.trial_id))


def extremes(archive: Archive, k: int) -> tuple[list[Trial], list[Trial]]:
    ranked = sorted(archive.scored(), key=lambda t: (-(t.score or 0.0), t.trial_id))
    return ranked[:k], ranked[-k:] if len(ranked) > k else []


class MLCopilotProposer(LLMBaseline):
    name: ClassVar[str] = "mlcopilot"
    #: Demonstrations retrieved into the few-shot prompt.
    demonstrations: ClassVar[int] = 8

    def guidelines(self, ctx: ProposalContext) -> Guidelines | None:
        """Distil knowledge from the experience pool (the archive): short rules, one call."""
        top, bottom = extremes(ctx.archive, 6)
        if not top:
            return None
        user = "\n\n".join(
            [
                task_text(ctx.task),
                "Best configurations so far:\n" + "\n".join(trial_line(t) for t in top),
                "Worst configurations so far:\n"
                + ("\n".join(trial_line(t) for t in bottom) or "(none)"),
                "Distil this experience into 3 to 5 short, general rules (knowledge) about which "
                "models and sample counts score well for each stage. Rules only, one per line.",
            ]
        )
        try:
            said = self.client.complete(
                [("system", SYSTEM), ("user", user)],
                seed=derived_seed(
                    self.settings.seed, ctx.iteration, "mlcopilot-knowledge", crc32=True
                ),
            )
        except AgentError as e:
            return Guidelines(
                text=ctx.guidelines or "", usage=AgentUsage(calls=1, failures=1), errors=[str(e)]
            )
        return Guidelines(
            text=said.text.strip() or (ctx.guidelines or ""),
            usage=said.usage,
            errors=said.notes,
            reasoning=said.reasoning,
        )

    def messages(self, ctx: ProposalContext) -> Sequence[Message]:
        demos = retrieve(ctx.task, ctx.archive, self.demonstrations)
        shots = "\n".join(
            f"Configuration: {config_text(t.config)} -> {ctx.task.main_metric} {t.score:.4f}"
            for t in demos
        )
        user = "\n\n".join(
            [
                task_text(ctx.task),
                "Knowledge:\n" + (ctx.guidelines or "(none yet)"),
                "Similar past experience (best first):\n" + (shots or "(none yet)"),
                f"Suggest the top {ctx.batch_size} configurations for this task, best first, "
                "within the budget and different from the experience above. " + ANSWER_FORMAT,
            ]
        )
        return [("system", SYSTEM), ("user", user)]
