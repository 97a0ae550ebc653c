"""Live pipelines on OpenAI-compatible endpoints (vLLM in production, the embedded server offline).

Pieces, each usable alone: `client` (one endpoint: concurrency limit, bounded retries, usage),
`cache` (durable per-sample store), `aggregators`, `retrievers` (non-LLM choices), `pipelines`
(what a stage sends and how its samples are read), `executor` (the `kind: live` executor).
"""
