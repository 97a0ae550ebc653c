"""How long an agent call may take: from the answer's token cap and the endpoint's measured speed.

A fixed timeout took a slow but working endpoint for a dead one: the embedded SmolLM2 on two busy
cores writes 4-7 tokens a second, so a 1,024-token answer needs minutes, and the fixed 120 s
stopped the demo as "unreachable" while the server was answering. The agent's answers are
streamed, so the client sees them progress, and unless `agent_timeout_s` fixes a limit, each
call's limit is derived (`call_limit`): three times what its cap should take at the speed measured
on this endpoint's earlier answers (`Pace`: seconds to the first token, then tokens per second),
or, before any answer was measured, what the cap takes at `SLOWEST_TOKENS_PER_S` after
`FIRST_CALL_S`. The same limit bounds every wait for the next chunk, so an endpoint that accepts a
request and sends nothing is stopped as hanging after it, and one that answers past it is stopped
as slow with the count of what it sent (`TooSlow`): the messages tell the two apart from an
endpoint that cannot be reached at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from agenttts.errors import AgentTTSError

#: Before any answer was measured: the wait allowed for the first token (a long prompt's prefill
#: on a busy CPU), and the slowest writing speed expected of a working endpoint.
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


def call_limit(cap: int, pace: Pace | None, fixed: float | None = None) -> float:
    """Seconds one call may take: `fixed` when the run sets one, else derived from the cap and
    the measured pace (see the module docstring)."""
    if fixed is not None:
        return fixed
    if pace is None:
        return FIRST_CALL_S + cap / SLOWEST_TOKENS_PER_S
    return MARGIN * pace.expected_s(cap) + SLACK_S


class TooSlow(AgentTTSError):
    """A call that was still producing when its limit passed."""

    def __init__(self, tokens: int, seconds: float, limit: float) -> None:
        super().__init__(f"{tokens} tokens in {seconds:.0f} s")
        self.tokens, self.seconds, self.limit = tokens, seconds, limit


@dataclass
class Streamed:
    """A streamed answer added up (`message`), with what its timing measured."""

    message: Any
    tokens: int
    seconds: float
    first_token_s: float | None

    def pace(self) -> Pace | None:
        """The speed this answer showed, when it showed one (two tokens at least)."""
        if self.first_token_s is None or self.tokens < 2:
            return None
        writing = max(self.seconds - self.first_token_s, 1e-3)
        return Pace(self.first_token_s, self.tokens / writing)


def read_stream(chunks: Iterable[Any], limit: float, clock: Any = time.monotonic) -> Streamed:
    """Add up a LangChain message stream, counting the chunks that carry text or thinking as
    tokens; `TooSlow` once `limit` seconds pass (waits between chunks are bounded by the HTTP
    client's read timeout, set to the same limit)."""
    start = clock()
    message: Any = None
    tokens = 0
    first: float | None = None
    iterator: Iterator[Any] = iter(chunks)
    for chunk in iterator:
        now = clock() - start
        if chunk.content or chunk.additional_kwargs.get("reasoning_content"):
            tokens += 1
            first = now if first is None else first
        message = chunk if message is None else message + chunk
        if now > limit:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # stop reading: the connection goes
            raise TooSlow(tokens, now, limit)
    return Streamed(message, tokens, clock() - start, first)
