"""Reading a reasoning model's answer: the thinking apart from the answer, whatever its shape.

The paper's agent was o3-mini, and the open models users point `--agent-base-url` at are mostly
reasoning models (DeepSeek-R1 distills, Qwen3 in thinking mode, gpt-oss on vLLM). They think
before they answer, in one of these shapes, each of which the agent's client must read:

- a `<think>...</think>` preamble in the content (Qwen3's chat template opens the tag in the
  prompt, so the content may hold only the closing one); its braces are not the answer's JSON;
- a separate message field: `reasoning_content` (vLLM's reasoning parsers, DeepSeek) or
  `reasoning` (newer vLLM, OpenRouter), which `ChatOpenAI` drops: `ReasoningChatOpenAI` keeps it;
- thinking that uses the whole token cap: `finish_reason` "length" and no answer after it;
- o-series endpoints that refuse any temperature but the default 1 (HTTP 400).

The thinking is kept (the archive records it beside the answer) and its tokens are completion
tokens, so they count in the search cost like the answer's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

#: Message fields in which servers return the thinking, in the order they are read.
REASONING_FIELDS = ("reasoning_content", "reasoning")
#: Where the client keeps the thinking on a LangChain message (`additional_kwargs`).
KEPT_AS = "reasoning_content"

_OPEN, _CLOSE = "<think>", "</think>"
_TEMPERATURE = re.compile(r"temperature", re.IGNORECASE)


def split_thinking(content: str) -> tuple[str, str]:
    """(thinking, answer) of a message's content: what a `<think>` block holds, and the rest.
    Content with only the closing tag is thinking up to it; an opened block never closed is all
    thinking (cut off at the cap), with no answer."""
    if _CLOSE in content:
        before, _, after = content.partition(_CLOSE)
        return before.replace(_OPEN, "", 1).strip(), after.strip()
    head = content.lstrip()
    if head.startswith(_OPEN):
        return head[len(_OPEN) :].strip(), ""
    return "", content


def reasoning_of(message: Mapping[str, Any]) -> str:
    """The thinking a server put in a message's (or a stream delta's) own field, else ""."""
    for name in REASONING_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def refuses_temperature(status: int, message: str) -> bool:
    """Whether an HTTP error is an endpoint refusing the temperature asked (o-series: "Unsupported
    value: 'temperature' does not support 0.9 with this model")."""
    return status == 400 and bool(_TEMPERATURE.search(message))


@cache
def reasoning_chat_openai() -> type[Any]:
    """`ChatOpenAI` that keeps the thinking of a separate field, in full and streamed, under
    `additional_kwargs["reasoning_content"]` (stream chunks add up, as LangChain merges strings).
    Made on first use: only LLM proposers import langchain-openai."""
    from langchain_openai import ChatOpenAI

    class ReasoningChatOpenAI(ChatOpenAI):
        def _create_chat_result(self, response: Any, generation_info: Any = None) -> Any:
            result = super()._create_chat_result(response, generation_info)
            raw = response if isinstance(response, dict) else response.model_dump()
            for generation, choice in zip(
                result.generations, raw.get("choices") or [], strict=False
            ):
                thinking = reasoning_of(choice.get("message") or {})
                if thinking:
                    generation.message.additional_kwargs[KEPT_AS] = thinking
            return result

        def _convert_chunk_to_generation_chunk(
            self, chunk: dict[str, Any], default_chunk_class: type, base_generation_info: Any
        ) -> Any:
            out = super()._convert_chunk_to_generation_chunk(
                chunk, default_chunk_class, base_generation_info
            )
            choices = chunk.get("choices") or []
            if out is not None and choices:
                thinking = reasoning_of(choices[0].get("delta") or {})
                if thinking:
                    out.message.additional_kwargs[KEPT_AS] = thinking
            return out

    return ReasoningChatOpenAI
