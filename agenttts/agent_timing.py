"""How long an agent call may wait: from the answer's token cap and the endpoint's measured speed.

A fixed timeout took a slow but working endpoint for a dead one: the embedded SmolLM2 on two busy
cores writes 4-7 tokens a second, so a 1,024-token answer needs minutes, and the fixed 120 s
stopped the demo as "unreachable" while the server was answering. The agent's answers are
streamed, so the client sees them progress:

- by default an answer that keeps streaming is waited for, however long it takes (its token cap
  bounds it), and the only limit is on silence: the wait for the first token, or for the next one,
  may last `call_limit` -- three times what the cap takes at the slowest speed measured on this
  endpoint (`Pace`: seconds to the first token, then tokens per second), plus 30 s, and never
  less than `FIRST_CALL_S`; before any answer was measured, `FIRST_CALL_S` plus the cap at
  `SLOWEST_TOKENS_PER_S`. An endpoint that accepts a request and sends nothing that long is
  hanging;
- with `agent_timeout_s` set, that is the limit of the whole call (and of any silence): an answer
  still streaming past it is stopped as slow, with the count of what it sent (`TooSlow`).

The client's messages tell these apart from an endpoint that cannot be reached at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agenttts.errors import AgentTTSError

#: Before any answer was measured: the wait allowed for the first token (a long prompt's prefill
#: on a busy CPU), and the slowest writing speed expected of a working endpoint. The first is
#: also the least any derived limit allows.
FIRST_CALL_S = 120.0
SLOWEST_TOKENS_PER_S = 2.0
#: How many times the expected duration a derived limit allows, plus a fixed slack.
MARGIN = 3.0
SLACK_S = 30.0


@dataclass(frozen=True)
class Pace:
    """An endpoint's measured speed: seconds to its first token, then tokens per second."""

    first_token_s: float
    tokens_per_s: float

    def expected_s(self, cap: int) -> float:
        return self.first_token_s + cap / self.tokens_per_s

    def slower(self, other: Pace | None) -> Pace:
        """The slower of two measurements in each respect: limits only grow with experience."""
        if other is None:
            return self
        return Pace(
            max(self.first_token_s, other.first_token_s),
            min(self.tokens_per_s, other.tokens_per_s),
        )


def call_limit(cap: int, pace: Pace | None, fixed: float | None = None) -> float:
    """Seconds a call may wait for its next chunk: `fixed` when the run sets one (then also the
    whole call's limit), else derived from the cap and the measured pace (the module docstring)."""
    if fixed is not None:
        return fixed
    if pace is None:
        return FIRST_CALL_S + cap / SLOWEST_TOKENS_PER_S
    return max(FIRST_CALL_S, MARGIN * pace.expected_s(cap) + SLACK_S)


class TooSlow(AgentTTSError):
    """A call that was still producing when its fixed limit passed."""

    def __init__(self, tokens: int, seconds: float, limit: float) -> None:
        super().__init__(f"{tokens} tokens in {seconds:.0f} s")
        self.tokens, self.seconds, self.limit = tokens, seconds, limit


@dataclass
class Streamed:
    """A streamed answer added up (`message`), with what its timing measured; filled in while it
    streams, so a caller whose stream broke off still knows how far it got."""

    message: Any = None
    tokens: int = 0
    seconds: float = 0.0
    first_token_s: float | None = None

    def pace(self) -> Pace | None:
        """The speed this answer showed, when it showed one (two tokens at least)."""
        if self.first_token_s is None or self.tokens < 2:
            return None
        writing = max(self.seconds - self.first_token_s, 1e-3)
        return Pace(self.first_token_s, self.tokens / writing)


def read_stream(
    chunks: Iterable[Any], into: Streamed, total: float | None = None, clock: Any = time.monotonic
) -> Streamed:
    """Add up a LangChain message stream into `into`, counting the chunks that carry text or
    thinking as tokens; `TooSlow` once a `total` limit passes (silences are bounded by the HTTP
    client's read timeout, set by the caller)."""
    start = clock()
    iterator = iter(chunks)
    for chunk in iterator:
        now = clock() - start
        if chunk.content or chunk.additional_kwargs.get("reasoning_content"):
            into.tokens += 1
            into.first_token_s = now if into.first_token_s is None else into.first_token_s
        into.message = chunk if into.message is None else into.message + chunk
        into.seconds = now
        if total is not None and now > total:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # stop reading: the connection goes
            raise TooSlow(into.tokens, now, total)
    into.seconds = clock() - start
    return into
