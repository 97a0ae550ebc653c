"""Small helpers shared by the command modules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agenttts.environment.space import Config
from agenttts.environment.task import Task
from agenttts.errors import InputError


def parse_config_arg(task: Task, text: str) -> Config:
    """`--config` JSON (or @file) -> a configuration the task can run; InputError otherwise."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise InputError(f"--config {text}: cannot read the file ({why})") from None
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"--config is not valid JSON: {e}") from None
    try:
        config = Config.of(raw)
    except (ValidationError, TypeError, AttributeError, IndexError) as e:
        raise InputError(
            f'--config must look like {{"stage": {{"model": NAME, "samples": S}}, ...}}: {e}'
        ) from None
    return config


def fmt_units(value: float | None) -> str:
    """Budget units as people read them: 814, 114.67, 0.5 (two decimals at most, no trailing 0s)."""
    if value is None:
        return "-"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def fmt_params(params: float | None) -> str:
    if not params:
        return "-"
    return f"{params / 1e9:g}B" if params >= 1e9 else f"{params / 1e6:g}M"


def plain_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned plain-text columns, for terminal output that also greps well."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in cells
    )
