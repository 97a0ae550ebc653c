"""Part of agenttts (installed as agenttts.nodes)."""
