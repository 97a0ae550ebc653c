"""Part of agenttts (installed as agenttts.prompts)."""
