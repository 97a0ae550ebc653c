"""Part of agenttts (installed as agenttts.tasks)."""
