"""The AgentTTS agent: an LLM that reads the archive and the insight prompts and proposes trials.

Three calls, as in the paper: after the initial trials it states each stage's preferred model
(structured, checked against the task and re-asked when it names an unknown stage or model); each
iteration it writes search guidelines (free text, insights 2 and 3) and proposes a batch
(structured: a list of configurations with a rationale). Proposals are not screened here: the
graph's screen rejects unknown models, out-of-range samples and over-budget configurations and
records why, so the agent sees it next time. Only entries that cannot form a configuration at all
are dropped here, each with a recorded error. Bad answers never raise; an unreachable endpoint does
(`ResumableStop`), so the graph stops resumably. With `hybrid_agent` on (the default) the prompt
also carries the insight proposer's fitted numbers, and the batch is repaired and topped up
(`agenttts.proposers.hybrid`); off, this is the paper's agent exactly. Free evaluations
(`agenttts.derived`) reach the proposal prompt as per-stage curves (`{curves}`: score by sample
count per model), not as rows of the archive; with the hybrid agent and progressive sampling on,
the prompt also prices the insight proposer's candidates by what they would newly cost (`{costs}`,
`archive_view.new_costs_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import BaseModel, Field, model_validator

from agenttts.environment.space import Config, StageConfig, derived_seed
from agenttts.environment.task import Stage, Task
from agenttts.errors import AgentError
from agenttts.llm import AgentClient, AgentUsage, Message
from agenttts.prompting import role_prompt
from agenttts.proposers.archive_view import (
    archive_text,
    curves_text,
    new_costs_text,
    task_text,
)
from agenttts.proposers.base import (
    Guidelines,
    Preferences,
    Proposal,
    ProposalContext,
    Proposer,
    ProposerSettings,
)
from agenttts.proposers.hybrid import complete_batch
from agenttts.proposers.insight import InsightProposer
from agenttts.proposers.insight.evidence import evidence_text
from agenttts.proposers.insight.preferences import preference_configs

# --- what the agent must answer ------------------------------------------------------------------


class StageChoice(BaseModel):
    stage: str
    model: str
    samples: int


class ProposedConfig(BaseModel):
    stages: list[StageChoice]

    @model_validator(mode="before")
    @classmethod
    def _accept_mapping(cls, value: Any) -> Any:
        """Also take the archive's own form, {"stage": {"model": m, "samples": s}, ...}."""
        if isinstance(value, dict) and "stages" not in value:
            rows = []
            for stage, v in value.items():
                if isinstance(v, dict):
                    rows.append({"stage": stage, **v})
                elif isinstance(v, list | tuple) and len(v) == 2:
                    rows.append({"stage": stage, "model": v[0], "samples": v[1]})
                else:
                    return value
            return {"stages": rows}
        return value


class ProposalAnswer(BaseModel):
    configs: list[ProposedConfig] = Field(description="the configurations to try next")
    rationale: str = ""


class StagePreference(BaseModel):
    stage: str
    model: str
    reason: str = ""


class PreferenceAnswer(BaseModel):
    preferences: list[StagePreference]
    notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _accept_mapping(cls, value: Any) -> Any:
        """Also take {"preferences": {"stage": {"model": m, "reason": r}}} (the wire form)."""
        if isinstance(value, dict) and isinstance(value.get("preferences"), dict):
            rows = [
                {"stage": k, **v} if isinstance(v, dict) else {"stage": k, "model": v}
                for k, v in value["preferences"].items()
            ]
            return {**value, "preferences": rows}
        return value


# --- checks that make an answer unusable (fed back to the agent) ---------------------------------


def preference_problems(task: Task, answer: PreferenceAnswer) -> list[str]:
    problems = []
    for p in answer.preferences:
        if p.stage not in task.stage_names:
            problems.append(f"unknown stage {p.stage!r} (stages: {', '.join(task.stage_names)})")
        elif p.model not in task.stage(p.stage).model_names:
            models = ", ".join(task.stage(p.stage).model_names)
            problems.append(f"stage {p.stage!r} has no model {p.model!r} (models: {models})")
    named = {p.stage for p in answer.preferences}
    missing = [s for s in task.stage_names if s not in named]
    if missing:
        problems.append(f"no preference given for stage(s) {', '.join(missing)}")
    return problems


def to_configs(answer: ProposalAnswer) -> tuple[list[Config], list[str]]:
    """Entries that form a configuration; the rest become errors (screening judges the task)."""
    configs, errors = [], []
    for i, pc in enumerate(answer.configs):
        stages = [c.stage for c in pc.stages]
        dup = sorted({s for s in stages if stages.count(s) > 1})
        bad = [c for c in pc.stages if c.samples < 1]
        if dup or bad or not pc.stages:
            why = (
                f"stage(s) {', '.join(dup)} given twice"
                if dup
                else "no stages"
                if not pc.stages
                else f"samples must be >= 1 (got {bad[0].samples} for {bad[0].stage})"
            )
            errors.append(f"proposed configuration {i + 1} dropped: {why}")
            continue
        configs.append(
            Config({c.stage: StageConfig(model=c.model, samples=c.samples) for c in pc.stages})
        )
    return configs, errors


def ask_for_proposal(
    client: AgentClient,
    messages: Sequence[Message],
    batch_size: int,
    *,
    seed: int,
    wire_schema: dict[str, Any] | None = None,
) -> Proposal:
    """Ask for configurations, re-asking while none is usable; every LLM proposer shares this.

    At most three batches' worth is kept: the screen judges them, the excess only costs time.
    """

    def usable(a: ProposalAnswer) -> list[str]:
        configs, errors = to_configs(a)
        return [] if configs else ["no usable configuration", *errors[:3]]

    answer = client.structured(
        messages, ProposalAnswer, check=usable, seed=seed, wire_schema=wire_schema
    )
    if answer.value is None:
        return Proposal(usage=answer.usage, errors=answer.errors, reasoning=answer.reasoning)
    configs, dropped = to_configs(answer.value)
    limit = batch_size * 3
    if len(configs) > limit:
        dropped.append(f"{len(configs) - limit} configuration(s) beyond {limit} ignored")
    return Proposal(
        configs=configs[:limit],
        rationale=answer.value.rationale.strip(),
        usage=answer.usage,
        errors=[*answer.errors, *dropped],
        reasoning=answer.reasoning,
    )


def _stage_choice(stage: Stage, reason: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"model": {"type": "string", "enum": stage.model_names}}
    if reason:
        props["reason"] = {"type": "string", "maxLength": 160}
    else:
        props["samples"] = (
            {"type": "integer", "enum": list(stage.samples)}
            if stage.samples
            else {"type": "integer", "minimum": 1, "maximum": stage.max_samples}
        )
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def _per_stage(task: Task, reason: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {s.name: _stage_choice(s, reason) for s in task.stages},
        "required": task.stage_names,
        "additionalProperties": False,
    }


def proposal_wire_schema(task: Task, batch_size: int) -> dict[str, Any]:
    """What the server's guided decoding follows: one entry per stage with that stage's models and
    S range, at most a batch of configurations, a short rationale. A weak model then cannot wander
    off the menu or run past its token limit; the budget is still the screen's job."""
    return {
        "type": "object",
        "properties": {
            "configs": {
                "type": "array",
                "items": _per_stage(task, reason=False),
                "minItems": 1,
                "maxItems": batch_size,
            },
            "rationale": {"type": "string", "maxLength": 300},
        },
        "required": ["configs", "rationale"],
        "additionalProperties": False,
    }


def preference_wire_schema(task: Task) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "preferences": _per_stage(task, reason=True),
            "notes": {"type": "string", "maxLength": 300},
        },
        "required": ["preferences", "notes"],
        "additionalProperties": False,
    }


class AgentTTSProposer(Proposer):
    name: ClassVar[str] = "agenttts"
    uses_llm = True
    #: Archive rows shown to the agent (small models have 2k-token contexts).
    archive_rows: ClassVar[int] = 16

    def __init__(
        self, settings: ProposerSettings | None = None, *, client: AgentClient | None = None
    ):
        super().__init__(settings)
        self.client = client or AgentClient(self.settings.endpoint())

    def initial_configs(self, task: Task) -> list[tuple[Config, str]] | None:
        return None if 1 in self.settings.no_insights else preference_configs(task)

    # --- prompts ---------------------------------------------------------------------------------
    def _render(self, role: str, ctx: ProposalContext, **fields: object) -> list[tuple[str, str]]:
        common = {
            "task": task_text(ctx.task),
            "archive": archive_text(ctx.archive, max_rows=self.archive_rows),
            "preferences": _prefs_text(ctx),
            "batch_size": ctx.batch_size,
        }
        ins, where = self.settings.no_insights, self.settings.prompts_dir
        filled: dict[str, Any] = {**common, **fields}
        return [
            ("system", role_prompt("system", no_insights=ins, prompts_dir=where)),
            ("user", role_prompt(role, no_insights=ins, prompts_dir=where, **filled)),
        ]

    # --- the three calls -------------------------------------------------------------------------
    def summarize_preferences(self, ctx: ProposalContext) -> Preferences | None:
        view = replace(ctx, archive=ctx.archive.in_phase("init"))
        answer = self.client.structured(
            self._render("preferences", view),
            PreferenceAnswer,
            check=lambda a: preference_problems(ctx.task, a),
            seed=derived_seed(self.settings.seed, 0, "preferences", crc32=True),
            wire_schema=preference_wire_schema(ctx.task),
        )
        if answer.value is None:
            raise AgentError("no usable model preferences: " + " | ".join(answer.errors[-3:]))
        models = {p.stage: p.model for p in answer.value.preferences}
        reasons = "; ".join(f"{p.stage}: {p.model} - {p.reason}" for p in answer.value.preferences)
        notes = " ".join(x for x in (answer.value.notes.strip(), reasons) if x)
        return Preferences(
            models=models, notes=notes, usage=answer.usage, reasoning=answer.reasoning
        )

    def guidelines(self, ctx: ProposalContext) -> Guidelines | None:
        messages = self._render("guidelines", ctx, previous=ctx.guidelines or "(none yet)")
        try:
            said = self.client.complete(
                messages,
                seed=derived_seed(self.settings.seed, ctx.iteration, "guidelines", crc32=True),
            )
        except AgentError as e:
            return Guidelines(
                text=ctx.guidelines or "", usage=AgentUsage(calls=1, failures=1), errors=[str(e)]
            )
        text = said.text.strip()
        if not text:
            return Guidelines(
                text=ctx.guidelines or "",
                usage=said.usage + AgentUsage(failures=1),
                errors=[
                    *said.notes,
                    "the agent returned empty guidelines; the previous ones are kept",
                ],
                reasoning=said.reasoning,
            )
        return Guidelines(text=text, usage=said.usage, errors=said.notes, reasoning=said.reasoning)

    def propose(self, ctx: ProposalContext) -> Proposal:
        hybrid = self.settings.hybrid
        evidence = evidence_text(ctx.task, ctx.archive) if hybrid else ""
        costs = ""
        if hybrid and self.settings.progressive:  # the insight proposer's candidates, priced
            helper = InsightProposer(replace(self.settings, agent=None))
            costs = new_costs_text(ctx.task, ctx.archive, helper.propose(ctx).configs)
        proposal = ask_for_proposal(
            self.client,
            self._render(
                "proposal",
                ctx,
                guidelines=ctx.guidelines or "(none)",
                evidence=evidence,
                curves=curves_text(ctx.archive),
                costs=costs,
            ),
            ctx.batch_size,
            seed=derived_seed(self.settings.seed, ctx.iteration, "proposal", crc32=True),
            wire_schema=proposal_wire_schema(ctx.task, ctx.batch_size),
        )
        return complete_batch(proposal, ctx, self.settings) if hybrid else proposal


def _prefs_text(ctx: ProposalContext) -> str:
    if not ctx.preferences:
        return "(none stated)"
    out = ", ".join(f"{s}: {m}" for s, m in ctx.preferences.items())
    return out + (f" ({ctx.preference_notes})" if ctx.preference_notes else "")
