"""One screen for every proposer's output, so all methods are held to the same rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agenttts.archive import Archive
from agenttts.environment.space import Config, config_problems
from agenttts.environment.task import Task


@dataclass
class Screened:
    accepted: list[Config] = field(default_factory=list)
    rejected: list[tuple[Config, str]] = field(default_factory=list)
    duplicates: list[Config] = field(default_factory=list)


def screen(task: Task, configs: Iterable[Config], archive: Archive) -> Screened:
    """Reject invalid or over-budget configurations (with the reason); drop duplicates of trials
    already evaluated (run, or scored free from another trial's samples) or already accepted
    (not re-run, not recorded again)."""
    out = Screened()
    seen = archive.evaluated().keys()
    for config in configs:
        problems = config_problems(task, config)
        if problems:
            out.rejected.append((config, "; ".join(problems)))
        elif config.key() in seen:
            out.duplicates.append(config)
        else:
            seen.add(config.key())
            out.accepted.append(config)
    return out
