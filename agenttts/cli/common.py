"""Small helpers shared by the command modules."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from agenttts.cli.main import UserError
from agenttts.environment.task import Config, Task


def parse_config_arg(task: Task, text: str) -> Config:
    """`--config` JSON (or @file) -> a configuration the task can run; UserError otherwise."""
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--config is not valid JSON: {e}") from None
    try:
        config = Config.of(raw)
    except (ValidationError, TypeError, AttributeError, IndexError) as e:
        raise UserError(
            '--config must look like {"stage": {"model": NAME, "samples": S}, ...}: ' f"{e}"
        ) from None
    return config
