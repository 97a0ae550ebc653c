"""The three AgentTTS insights as code: a search that needs no LLM.

A named proposer of its own (``insight``), so the loop runs deterministically in tests and offline;
it is never a silent stand-in for the LLM agent. Every call rebuilds its whole view from the archive
(a pure function of task, archive, iteration and seed): a run killed and resumed proposes exactly
what an uninterrupted one would.

- Insight 1 (stages prefer different model sizes, `preferences`): from the initial trials, each
  stage keeps the model that scored best, the smaller one unless the larger is clearly better (by
  more than one training item's worth of score). Without it, model choice is searched by same-cost
  swaps.
- Insight 2 (each stage has an optimal sample count, `moves` and `surface`): around the incumbent,
  each stage's S is searched by bisection in log-space between the nearest sample counts already
  tried on either side (halving/doubling while one side is open), assuming a single peak, and a
  response surface fitted to the archive points inside the plateau. Without it, the search assumes
  more samples is always better and only fills the budget.
- Insight 3 (stage budgets interdepend, `moves`): budget moves between stages (one stage's S up,
  another's down to fit), and an upstream stage is tried with a stronger model while its downstream
  stage samples less. When the archive's best scores vary little, exploration (model swaps, wider
  jumps) moves forward in the batch. Without it, stages are searched one at a time, never traded.
"""

from agenttts.proposers.insight.proposer import InsightProposer

__all__ = ["InsightProposer"]
