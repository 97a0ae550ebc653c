"""AgentHPO-style baseline (arXiv 2402.01881): a "creator" LLM reads the whole trial log.

AgentHPO's creator gets the task and the complete history of trials with the analyses written so
far, and proposes the next hyperparameters with a rationale; an executor runs them and the log
grows. Here the executor is the graph's environment node, the log is every executed and rejected
trial in order (the most recent `max_log_rows` when a small agent's context cannot hold more) and
the analyses are the rationales the creator gave in earlier iterations. No insight is given to it:
that is what the comparison with AgentTTS measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from agenttts.llm import Message
from agenttts.proposers.archive_view import task_text, trial_line
from agenttts.proposers.base import ProposalContext
from agenttts.proposers.llm_baseline import ANSWER_FORMAT, LLMBaseline

SYSTEM = (
    "You are the Creator agent of an automated hyperparameter optimisation team. You read the task "
    "and the complete log of trials run so far, analyse what worked and what did not, and propose "
    "the next configurations to run, each justified by that analysis."
)


class AgentHPOProposer(LLMBaseline):
    name: ClassVar[str] = "agenthpo"
    #: Log lines kept (most recent) when the whole log would overflow a small agent's context.
    max_log_rows: ClassVar[int] = 60

    def messages(self, ctx: ProposalContext) -> Sequence[Message]:
        log = ctx.archive
        cut = len(log) - self.max_log_rows
        lines = [trial_line(t) for t in log[max(0, cut) :]]
        if cut > 0:
            lines.insert(0, f"(the first {cut} trials are omitted)")
        analyses: dict[int, str] = {}
        for t in log:
            if t.rationale and t.iteration > 0:
                analyses.setdefault(t.iteration, t.rationale.strip())
        notes = "\n".join(f"iteration {k}: {v}" for k, v in sorted(analyses.items())[-5:])
        user = "\n\n".join(
            [
                task_text(ctx.task),
                "Trial log (chronological; score on the training split, cost in budget units):\n"
                + ("\n".join(lines) if lines else "(no trials yet)"),
                "Your earlier analyses:\n" + (notes or "(none yet)"),
                f"Analyse the log, then propose {ctx.batch_size} new configurations that fit the "
                "budget and that you expect to score higher than the best so far. Do not repeat "
                "a logged configuration. " + ANSWER_FORMAT,
            ]
        )
        return [("system", SYSTEM), ("user", user)]
