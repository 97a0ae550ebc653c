"""`environment: {kind: chain}`: a pipeline declared in the task file, with no code.

Each stage, in order, renders its prompt template, draws the trial's S samples, reads each with
its parser and aggregates them with its aggregator; the result is available to later stages under
the stage's name. The prediction is the last stage's output (or `output:`'s).

    stages:
      - name: select
        aggregator: vote_ids
        settings:
          prompt: {user: "Question: {question}\\nPassages:\\n{passages}\\nWhich passages help?"}
          parse: {ids: passages, max: 3}    # the numbers named -> those entries of `passages`
      - name: answer
        aggregator: vote
        settings:
          prompt: {user: "{select}\\nQuestion: {question}\\nAnswer:"}
          parse: answer                     # after "Answer:", else the first line
    environment: {kind: chain, settings: {metric: [em, f1]}}

Template variables are the item's fields and the earlier stages' outputs; a list renders as
numbered lines (`[1] ...`), so a model can name entries by number. A template naming anything
else is reported by `task validate`, before any spend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agenttts.environment.live.executor import PipelineExecutor, PipelineSettings, Program
from agenttts.environment.live.loading import load_items
from agenttts.environment.live.parsers import Parser
from agenttts.environment.live.prompts import PromptTemplate
from agenttts.environment.live.scoring import DataProgram, Scorer
from agenttts.environment.live.stages import Stages, split_settings
from agenttts.environment.task import Problem, Stage, Task
from agenttts.environment.user_files import validation_problems
from agenttts.errors import InputError


class ChainSettings(PipelineSettings):
    output: str | None = Field(default=None, description="the stage whose output is scored")


class ChainStage(BaseModel):
    """A chain stage's own keys in `stages[].settings` (sampling keys aside)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | dict[str, str] = Field(description="a prompt file, or {system, user}")
    parse: Parser | None = Field(default=None, description="default: ids for vote_ids, else answer")

    def parser(self, stage: Stage) -> Parser:
        if self.parse is not None:
            return self.parse
        return Parser(kind="ids") if stage.aggregator == "vote_ids" else Parser(kind="answer")


def template_text(value: Any) -> str:
    """A template variable as text: lists as numbered lines, mappings as JSON, None as ""."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "\n".join(f"[{i}] {template_text(v)}" for i, v in enumerate(value, start=1))
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class ChainProgram(DataProgram, Program):
    def __init__(self, task: Task, settings: ChainSettings):
        super().__init__(task, settings)
        self.output = settings.output or task.stages[-1].name
        self.steps: list[tuple[Stage, PromptTemplate, Parser]] = []
        for stage in task.stages:
            spec = ChainStage.model_validate(split_settings(stage)[1])
            template = PromptTemplate.of(spec.prompt, task.base_dir)
            self.steps.append((stage, template, spec.parser(stage)))

    async def predict(self, item: dict[str, Any], stages: Stages) -> Any:
        values: dict[str, Any] = dict(item)
        for stage, template, parser in self.steps:
            handle = stages[stage.name]
            messages = template.messages(**{k: template_text(values[k]) for k in template.fields()})
            samples = await handle.sample(messages)
            parsed = [parser(s.text, item) for s in samples]
            out = await handle.aggregate(parsed, question=str(item.get("question", "")))
            if parser.kind == "ids" and parser.arg:
                out = [item[parser.arg][n - 1] for n in out]
            values[stage.name] = out
        return values[self.output]


class ChainExecutor(PipelineExecutor):
    kind = "chain"
    settings_model = ChainSettings

    @classmethod
    def check_program(cls, task: Task, settings: Any) -> list[Problem]:
        problems: list[Problem] = []
        try:
            assert task.data.path is not None
            fields = set(load_items(task.resolve(task.data.path))[0])
        except InputError as e:
            problems.append(Problem(field="data.path", message=str(e)))
            fields = None
        known = set(fields or ())
        for stage in task.stages:
            where = f"stages[{stage.name}]"
            given = split_settings(stage)[1]
            try:
                spec = ChainStage.model_validate(given, strict=True)
            except ValidationError as e:
                problems.extend(
                    Problem(field=f"{where}.settings.{field}", message=message)
                    for field, message in validation_problems(e, given)
                )
                known.add(stage.name)
                continue
            try:
                template = PromptTemplate.of(spec.prompt, task.base_dir)
            except InputError as e:  # the prompt file cannot be read
                problems.append(Problem(field=f"{where}.settings.prompt", message=str(e)))
                template = None
            if template is not None and fields is not None:
                later = {s.name for s in task.stages} - known - {stage.name}
                for name in sorted(template.fields() - known):
                    why = (
                        f"names {{{name}}}, the output of stage {name!r}, which runs later"
                        if name in later or name == stage.name
                        else f"names {{{name}}}, which is neither a field of the data items "
                        f"({', '.join(sorted(fields))}) nor an earlier stage"
                    )
                    problems.append(Problem(field=f"{where}.settings.prompt", message=why))
            parser = spec.parser(stage)
            if (
                parser.kind == "ids"
                and parser.arg
                and fields is not None
                and parser.arg not in fields
            ):
                problems.append(
                    Problem(
                        field=f"{where}.settings.parse",
                        message=f"ids of {parser.arg!r}: the data items have no such field",
                    )
                )
            fits = {"vote_ids", "first"} if parser.kind == "ids" else {"vote", "fuse", "first"}
            if stage.aggregator not in fits:
                problems.append(
                    Problem(
                        field=f"{where}.aggregator",
                        message=f"{stage.aggregator!r} does not fit the parser {parser.kind!r} "
                        "(ids go with vote_ids or first; answers with vote, fuse or first)",
                    )
                )
            for m in stage.models:
                if m.kind != "llm":
                    problems.append(
                        Problem(
                            field=f"{where}.models[{m.name}]",
                            message="a chain stage runs LLMs only (use kind: python to run a "
                            "retriever)",
                        )
                    )
            known.add(stage.name)
        if settings.output is not None and settings.output not in task.stage_names:
            problems.append(
                Problem(
                    field="environment.settings.output",
                    message=f"no stage {settings.output!r} (stages: {', '.join(task.stage_names)})",
                )
            )
        problems.extend(
            Problem(field="environment.settings.metric", message=p)
            for p in Scorer.problems(task.metrics, settings, task.base_dir)
        )
        return problems

    def make_program(self) -> ChainProgram:
        assert isinstance(self.live, ChainSettings)
        return ChainProgram(self.task, self.live)
