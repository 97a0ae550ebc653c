"""Live pipelines on OpenAI-compatible endpoints (vLLM in production, the embedded server offline).

Pieces, each usable alone: `client` (endpoints: concurrency limits, bounded retries, usage), `cache`
(durable per-sample store), `sampler` (drawing S samples through both), `stages` and `chat_model`
(what a user's pipeline gets per stage), `aggregators`, `parsers`, `prompts`, `scoring` (metrics),
`loading` (user code and data), `retrievers` (non-LLM choices) and `executor` (one trial = every
item of a split). The kinds: `python_pipeline` (`kind: python`, and `kind: live`, the bundled
retrieval -> QA pipeline) and `chain` (`kind: chain`).
"""
