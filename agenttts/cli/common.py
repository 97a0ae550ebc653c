"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agenttts.environment.space import Config
from agenttts.environment.task import Problem, Task, TaskError
from agenttts.environment.user_files import UnreadableFile, read_text, validation_problems
from agenttts.errors import InputError

#: What `--config` looks like, for the messages about one that does not.
CONFIG_SHAPE = '{"stage": {"model": NAME, "samples": S}, ...}'


def parse_config_arg(task: Task, text: str) -> Config:
    """`--config` JSON (or @FILE) -> a configuration; InputError otherwise: one line per wrong
    field, as for a task file (strictly typed: `"samples": true` or `2.5` is no sample count)."""
    source = "--config"
    if text.startswith("@"):
        source = f"--config {text}"
        try:
            text = read_text(text[1:])
        except UnreadableFile as e:
            raise InputError(f"--config @{e.where}: {e.reason}") from None
    try:
        raw: Any = json.loads(text, parse_constant=_not_a_number)
    except json.JSONDecodeError as e:
        raise InputError(f"{source} is not valid JSON: {e}") from None
    try:
        return Config.model_validate(raw, strict=True)
    except ValidationError as e:
        problems = [
            Problem(field=field, message=message if "." in field else f"{message}: {CONFIG_SHAPE}")
            for field, message in validation_problems(e, raw)
        ]
        raise TaskError(source, problems) from None


def _not_a_number(word: str) -> Any:
    """JSON as Python reads it takes NaN and Infinity; a configuration has no use for them."""
    raise InputError(f"--config: {word} is not a number JSON allows")


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


def resume_command(args: argparse.Namespace, thread: str) -> str:
    """The exact command that continues `thread`: this one as it was typed (`main` keeps its
    words), naming the thread when it did not."""
    words = list(getattr(args, "argv", None) or [])
    if not any(w == "--thread" or w.startswith("--thread=") for w in words):
        words += ["--thread", thread]
    typed = sys.argv[0]
    prog = typed if Path(typed).name == "agenttts" else "agenttts"
    return shlex.join([prog, *words])


def run_thread(
    args: argparse.Namespace,
    thread: str,
    overrides: dict[str, Any],
    *,
    on_event: Any = None,
    on_start: Any = None,
) -> Any:
    """`run_search` for a command (`search`, `demo`): every stop it raises, and Ctrl-C, names the
    exact command that continues `thread` (`resume_command`)."""
    from agenttts.graph.runner import run_search

    command = resume_command(args, thread)
    try:
        return run_search(
            args.task,
            thread,
            args.db,
            overrides,
            on_event=on_event,
            on_start=on_start,
            resume_command=command,
        )
    except KeyboardInterrupt:
        print(f"thread {thread!r} is saved; continue with `{command}`", file=sys.stderr)
        raise
