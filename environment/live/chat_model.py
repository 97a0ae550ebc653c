"""A stage as a LangChain chat model, so LangChain and LangGraph code runs under search unchanged.

`StageChatModel` is a real `BaseChatModel`: it takes the place of `ChatOpenAI(...)` in a user's
graph, chain or agent. Each `invoke`/`ainvoke` draws the stage's S samples of the prompt through
the stage handle (the same cache, endpoints, retries and token accounting as every live
pipeline), reads each sample with `parse` (default: the text itself; numbers for a `vote_ids`
stage) and answers with the stage's aggregate as one `AIMessage`. The samples, the model and the
token usage travel in `response_metadata` and `usage_metadata`.

Unbound (made from `agenttts.pipeline.stages` at import time), it resolves the trial running the
current item when called, so a module-level graph serves every trial. A sync `invoke` from a
worker thread (LangGraph runs sync nodes in threads) hands the draw to the trial's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from agenttts.environment.live.parsers import parse_ids
from agenttts.environment.live.stages import StageHandle, StageUnavailable


class StageChatModel(BaseChatModel):
    """The chat model of one pipeline stage under search (drop-in for `ChatOpenAI`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stage: str = Field(description="the task's stage this model object stands for")
    sampling: dict[str, Any] = Field(
        default_factory=dict, description="request parameters over the stage's defaults"
    )
    parse: Callable[[str], Any] | None = Field(
        default=None, description="one sample's text -> the value aggregated (default: per stage)"
    )
    aggregate: Callable[[list[Any]], Any] | None = Field(
        default=None, description="replaces the stage's aggregator (sync or async)"
    )
    _handle: StageHandle | None = PrivateAttr(default=None)

    @classmethod
    def for_handle(cls, handle: StageHandle, **kwargs: Any) -> StageChatModel:
        sampling = {k: v for k, v in kwargs.items() if k not in {"parse", "aggregate"}}
        model = cls(
            stage=handle.name,
            sampling=sampling,
            parse=kwargs.get("parse"),
            aggregate=kwargs.get("aggregate"),
        )
        model._handle = handle
        return model

    @property
    def _llm_type(self) -> str:
        return "agenttts-stage"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"stage": self.stage, **self.sampling}

    def handle(self) -> StageHandle:
        """This stage in the trial running now (bound at creation, else from the context)."""
        return self._handle if self._handle is not None else StageHandle(self.stage)

    def _read(self, handle: StageHandle, text: str) -> Any:
        if self.parse is not None:
            return self.parse(text)
        if handle.aggregator == "vote_ids":
            return parse_ids(text, 10**6, int(handle.settings.get("max_select", 5)))
        return text.strip()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._draw(self.handle(), messages, stop, kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        handle = self.handle()  # resolved here: this thread carries the item's context
        loop = handle.run.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise StageUnavailable(
                f"stage {self.stage!r}: a sync `invoke` inside async code would block the trial's "
                "event loop; use `await model.ainvoke(...)` there"
            )
        done = asyncio.run_coroutine_threadsafe(self._draw(handle, messages, stop, kwargs), loop)
        return done.result()

    async def _draw(
        self,
        handle: StageHandle,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> ChatResult:
        params = {**self.sampling, **kwargs}
        if stop:
            params["stop"] = stop
        drawn = await handle.draw(messages, handle.samples, **params)
        answers = [self._read(handle, s.text) for s in drawn.samples]
        if self.aggregate is not None:
            value = self.aggregate(answers)
            if asyncio.iscoroutine(value):
                value = await value
            handle.run.note_output(handle.name, value)
        else:
            question = next((str(m.content) for m in reversed(messages) if m.type == "human"), "")
            value = await handle.aggregate(answers, question=question)
        completion = drawn.completion_tokens
        message = AIMessage(
            content=aggregate_text(value),
            response_metadata={
                "stage": handle.name,
                "model_name": handle.model,
                "samples": [s.text for s in drawn.samples],
                "aggregator": "custom" if self.aggregate is not None else handle.aggregator,
            },
            usage_metadata={
                "input_tokens": drawn.prompt_tokens,
                "output_tokens": completion,
                "total_tokens": drawn.prompt_tokens + completion,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def aggregate_text(value: Any) -> str:
    """An aggregate as message text: ids as "2, 5", nothing as ""."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
