"""One screen for every proposer's output, so all methods are held to the same rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agenttts.archive import Trial, archived_keys
from agenttts.environment.task import Config, Task


@dataclass
class Screened:
    accepted: list[Config] = field(default_factory=list)
    rejected: list[tuple[Config, str]] = field(default_factory=list)
    duplicates: list[Config] = field(default_factory=list)


def screen(task: Task, configs: Iterable[Config], archive: Sequence[Trial]) -> Screened:
    """Reject invalid or over-budget configurations (with the reason); drop duplicates of archived
    or already-accepted trials (not re-run, not recorded again)."""
    out = Screened()
    seen = archived_keys(archive)
    for config in configs:
        problems = task.config_problems(config)
        if problems:
            out.rejected.append((config, "; ".join(problems)))
        elif config.key() in seen:
            out.duplicates.append(config)
        else:
            seen.add(config.key())
            out.accepted.append(config)
    return out
