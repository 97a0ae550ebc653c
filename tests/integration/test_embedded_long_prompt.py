"""The embedded server answers seeded requests whose prompt is longer than vLLM's prefill chunk.

vLLM's CPU build crashed its engine ("CPU Generator does not use offset") on a seeded request
whose prompt was prefilled in chunks (2,048 tokens by default): the agent's prompt grows with the
archive, so a search died once its archive was long. The server is started here with the flags
agenttts uses (a shared one may predate them, and the old flags would kill it).
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from agenttts.environment.embedded import EmbeddedServer

pytestmark = [pytest.mark.integration, pytest.mark.embedded]

#: ~3,000 tokens for SmolLM2's tokenizer: past the 2,048-token chunk, inside the 4,096 context.
LONG = "the quick brown fox jumps over the lazy dog " * 330


async def _ask(client: httpx.AsyncClient, url: str, seed: int) -> httpx.Response:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": f"{seed}: {LONG}\nSummarise in one word."}],
        "max_tokens": 4,
        "temperature": 0.9,
        "seed": seed,
        "n": 2,
    }
    return await client.post(f"{url}/chat/completions", json=body, timeout=900)


def test_seeded_prompts_longer_than_a_prefill_chunk_are_answered():
    if os.environ.get("AGENTTTS_EMBEDDED") != "1":
        pytest.skip("starts its own vLLM server (~35 s, 3 GiB): set AGENTTTS_EMBEDDED=1")

    async def run(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient() as client:
            first = await _ask(client, url, 7)
            # Two at once: together they exceed one step, which chunking would have split.
            return [first, *await asyncio.gather(_ask(client, url, 8), _ask(client, url, 9))]

    with EmbeddedServer() as server:
        answers = asyncio.run(run(server.base_url))
        for r in answers:
            assert r.status_code == 200, r.text[:300]
            assert r.json()["usage"]["prompt_tokens"] > 2048
            assert len(r.json()["choices"]) == 2
        assert server.alive, server.death_note()
        assert "does not use offset" not in server.log_path.read_text(errors="replace")
