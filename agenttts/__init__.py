"""agenttts: compute-optimal test-time scaling for multi-stage LLM pipelines (AgentTTS)."""

__version__ = "0.1.0"
