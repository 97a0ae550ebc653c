"""An LLM agent that never wastes a batch (`Context.hybrid_agent`, on by default).

Counted honestly at equal budget, LLM-driven optimisers often lose to classical ones, and a hybrid
wins. An agent's batch loses slots three ways: configurations over the budget (the screen rejects
them), sample counts the stage does not allow, and duplicates or a short answer. With the setting
on, every LLM proposer (`Proposer.uses_llm`) keeps its prompts and its reasoning and
passes its answer through `complete_batch`:

- **repair**: a configuration the agent meant but that cannot run as written (over the budget, or
  a sample count outside the stage's range or set) becomes the nearest one that can: sample counts
  snapped to the nearest allowed, then fewer samples on the stage the agent changed least from the
  incumbent (the best trial so far) -- the one it cared least about -- then the next such stage.
  The trial's rationale starts with `REPAIRED` and names the original and what changed. Unknown
  stages or models are not guessed at: the screen rejects them with the reason, as before.
- **top-up**: slots the agent left empty (after screening: invalid, duplicate, too few) are filled
  with the insight proposer's best moves; their rationale starts with `TOPPED_UP`.
- **evidence**: the agenttts agent's proposal prompt carries the insight proposer's numbers
  (`insight.evidence`), so it reasons from the same fits.

Off, the agent's answer goes to the screen as it came: the paper's agent exactly.
"""

from __future__ import annotations

import math
from dataclasses import replace

from agenttts.archive import Archive
from agenttts.environment.space import (
    BUDGET_TOLERANCE,
    Config,
    config_cost,
    config_problems,
    fewest_samples,
    max_samples_given,
    snap_samples,
    within_budget,
)
from agenttts.environment.task import Task
from agenttts.proposers.base import Proposal, ProposalContext, ProposerSettings

#: How a trial's rationale says it is not the agent's configuration as proposed.
REPAIRED = "repaired by agenttts"
TOPPED_UP = "topped up by the insight proposer"


def origin(rationale: str | None) -> str | None:
    """`REPAIRED` or `TOPPED_UP` where a trial's rationale says so; None for the agent's own."""
    return next((o for o in (REPAIRED, TOPPED_UP) if (rationale or "").startswith(o)), None)


def _change(task: Task, config: Config, incumbent: Config | None, stage: str) -> float:
    """How far the agent moved one stage from the incumbent: 1 for another model, plus the
    log-distance of the sample counts."""
    if incumbent is None or stage not in incumbent.root:
        return 0.0
    a, b = config[stage], incumbent[stage]
    return float(a.model != b.model) + abs(math.log(a.samples) - math.log(b.samples))


def repair(task: Task, config: Config, incumbent: Config | None) -> tuple[Config, str] | None:
    """The nearest configuration that can run, and what changed; None when `config` runs as it
    is or cannot be repaired (an unknown stage or model, or over budget at the fewest samples)."""
    names = set(task.stage_names)
    if not config_problems(task, config) or set(config.root) != names:
        return None
    if any(config[s.name].model not in s.model_names for s in task.stages):
        return None
    changes: list[str] = []
    current = config
    for s in task.stages:  # a count the stage does not allow: the nearest it does
        sc = current[s.name]
        allowed = (
            fewest_samples(s, sc.model)
            if s.model(sc.model).kind != "llm"
            else snap_samples(s, sc.samples)
        )
        if allowed != sc.samples:
            changes.append(f"{s.name} S {sc.samples}->{allowed} (allowed counts)")
            current = current.with_stage(s.name, sc.model, allowed)
    # Over the budget: fewer samples where the agent changed least, largest ties costliest first.
    costs = {s.name: s.cost(current[s.name].model, current[s.name].samples) for s in task.stages}
    order = sorted(
        task.stages, key=lambda s: (_change(task, config, incumbent, s.name), -costs[s.name])
    )
    for s in order:
        if within_budget(task, current):
            break
        sc = current[s.name]
        fits = max_samples_given(task, current, s, sc.model)
        lower = fits if fits >= fewest_samples(s, sc.model) else fewest_samples(s, sc.model)
        if lower < sc.samples:
            changes.append(f"{s.name} S {sc.samples}->{lower}")
            current = current.with_stage(s.name, sc.model, lower)
    if config_problems(task, current):
        return None
    was = config_cost(task, config)
    over = (
        f"cost {was:.1f} > budget {task.budget:g}"
        if was > task.budget + BUDGET_TOLERANCE
        else "within budget"
    )
    return current, f"{REPAIRED}: the agent proposed {config.short()} ({over}); " + ", ".join(
        changes
    )


def complete_batch(
    proposal: Proposal, ctx: ProposalContext, settings: ProposerSettings
) -> Proposal:
    """The agent's batch with over-budget proposals repaired and empty slots topped up by the
    insight proposer, each noted; the agent's own rationale stays the batch's."""
    task = ctx.task
    best = ctx.archive.best()
    incumbent = best.config if best is not None else None
    configs: list[Config] = []
    notes = dict(proposal.notes)
    repaired = 0
    for config in proposal.configs:
        fixed = repair(task, config, incumbent)
        if fixed is None:
            configs.append(config)
            continue
        new, why = fixed
        configs.append(new)
        notes[new.key()] = why + (f" | {proposal.rationale}" if proposal.rationale else "")
        repaired += 1
    runnable = _runnable(task, configs, ctx.archive)
    missing = ctx.batch_size - len(runnable)
    topped = 0
    if missing > 0:
        from agenttts.proposers.insight import InsightProposer

        helper = InsightProposer(replace(settings, agent=None))
        # Its own model preferences (fitted to the archive), not the agent's: a weak agent's
        # stated preference would steer the top-ups away from the models the data favours.
        extra = helper.propose(replace(ctx, preferences={}))
        taken = {c.key() for c in runnable} | ctx.archive.evaluated().keys()
        for config in extra.configs:
            if topped >= missing:
                break
            if config.key() in taken or config_problems(task, config):
                continue
            taken.add(config.key())
            configs.append(config)
            why = extra.notes.get(config.key()) or extra.rationale
            notes[config.key()] = f"{TOPPED_UP}: {why}"
            topped += 1
    origin = f"agent: {len(runnable)} runnable of {len(proposal.configs)} proposed"
    if repaired:
        origin += f" ({repaired} repaired to fit)"
    if topped:
        origin += f"; insight proposer: {topped} topped up"
    rationale = f"{proposal.rationale} [{origin}]" if proposal.rationale else f"[{origin}]"
    return proposal.model_copy(update={"configs": configs, "notes": notes, "rationale": rationale})


def _runnable(task: Task, configs: list[Config], archive: Archive) -> list[Config]:
    """What the screen would accept: valid, within budget, new, each once."""
    seen = archive.evaluated().keys()
    out = []
    for c in configs:
        if c.key() not in seen and not config_problems(task, c):
            seen.add(c.key())
            out.append(c)
    return out
