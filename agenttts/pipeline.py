"""Search your own pipeline: what a pipeline module imports from agenttts.

    from agenttts.pipeline import Stages, vote

    async def pipeline(item: dict, stages: Stages) -> str:
        qa = stages["qa"]                      # this trial's model and sample count for "qa"
        samples = await qa.sample([{"role": "user", "content": item["question"]}])
        return vote([s.text for s in samples])

A LangGraph graph keeps its code and swaps its model objects only:

    from agenttts.pipeline import stages
    llm = stages["qa"].chat_model()            # was: ChatOpenAI(model=...)

`stages` here is unbound: it resolves the trial running the current item when it is used.
Task files name the pipeline with `environment: {kind: python, settings: {pipeline: mod:name}}`.

Outside a search, the same code runs at the configuration a search chose, exported with
`agenttts export THREAD --out best.yaml`:

    from agenttts.pipeline import use_config
    use_config("best.yaml")                    # or AGENTTTS_CONFIG=best.yaml
    graph.invoke({...})                        # each stage: its model, S samples, its aggregator
"""

from __future__ import annotations

from agenttts.environment.live.aggregators import first, fuse, vote, vote_ids
from agenttts.environment.live.cache import Sample
from agenttts.environment.live.chat_model import StageChatModel
from agenttts.environment.live.configured import CONFIG_ENV, use_config
from agenttts.environment.live.parsers import (
    parse_answer,
    parse_ids,
    parse_json_field,
    parse_regex,
    strip_code_fence,
)
from agenttts.environment.live.stages import StageHandle, Stages, StageUnavailable, UndeclaredStage
from agenttts.environment.sandbox import TestRun, run_tests

#: The running trial's stages, for modules that build their pipeline once at import time.
stages = Stages()

__all__ = [
    "CONFIG_ENV",
    "Sample",
    "StageChatModel",
    "StageHandle",
    "StageUnavailable",
    "Stages",
    "TestRun",
    "UndeclaredStage",
    "first",
    "fuse",
    "parse_answer",
    "parse_ids",
    "parse_json_field",
    "parse_regex",
    "run_tests",
    "stages",
    "strip_code_fence",
    "use_config",
    "vote",
    "vote_ids",
]
