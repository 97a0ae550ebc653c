"""Part of agenttts (installed as agenttts.graph)."""
