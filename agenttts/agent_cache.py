"""The agent's answers, kept as the pipeline's samples are: the same question is answered once.

A question is the model behind the agent's served name (what its `/models` entry says, as the
sample cache keys pipeline models: `cache.model_identity`), the exact messages and the request's
parameters (temperature, token cap, seed, response format). A seeded agent asked the same question
gives the same answer, so replaying a stored one changes nothing the search decides, and costs no
call, no time and no search cost: a second search whose archive comes out the same (the same
samples, the same free evaluations) replays every answer of the first. The answers live in a
`SampleCache` file of their own (`agent_cache`), as sample 0 of their question, a thinking
model's thinking kept before the answer in a `<think>` block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenttts.environment.live.cache import Sample, SampleCache, model_identity, request_key


@dataclass(frozen=True)
class StoredAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class AgentAnswers:
    """One agent endpoint's stored answers (`identity`: its model, from its `/models` card)."""

    def __init__(self, path: str | Path, model: str, card: Mapping[str, Any] | None) -> None:
        self.cache = SampleCache(path)
        self.model = model
        self.identity = model_identity(model, card)

    def key(self, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
        return request_key(self.identity, messages, params)

    def get(self, key: str) -> StoredAnswer | None:
        found = self.cache.samples(key, 1)
        if not found:
            return None
        return StoredAnswer(
            found[0].text,
            self.cache.prompt_tokens(key) or 0,
            found[0].completion_tokens,
            found[0].finish_reason,
        )

    def put(
        self,
        key: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        answer: StoredAnswer,
    ) -> None:
        self.cache.put(
            key,
            model=self.model,
            identity=self.identity,
            messages=messages,
            params=params,
            prompt_tokens=answer.prompt_tokens,
            samples=[Sample(0, answer.text, answer.completion_tokens, answer.finish_reason)],
        )

    def close(self) -> None:
        self.cache.close()
