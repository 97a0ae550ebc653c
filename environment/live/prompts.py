"""Prompt templates of live stages: `### system` / `### user` sections with `{placeholders}`.

A template is a file (the bundled ones live in `tasks/prompts/`) or a mapping `{system, user}`
written inline in a task file. Placeholders use Python's format syntax (`{question}`; `{{` for a
literal brace), read with `string.Formatter`, so the variables a template names are known before
anything runs and a missing one is reported by `task validate`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agenttts.environment.user_files import read_text

BUNDLED_PROMPTS = Path(__file__).resolve().parent.parent.parent / "tasks" / "prompts"

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class PromptTemplate:
    """A chat prompt: an optional system message and a user message, both templates."""

    system: str | None
    user: str

    @classmethod
    def parse(cls, text: str) -> PromptTemplate:
        """Text with optional `### system` and `### user` headers (no header: all user)."""
        sections: dict[str, list[str]] = {}
        current = "user"
        for line in text.splitlines():
            header = re.fullmatch(r"###\s*(system|user)\s*", line.strip(), re.IGNORECASE)
            if header:
                current = header.group(1).lower()
                sections[current] = []
            else:
                sections.setdefault(current, []).append(line)
        system = "\n".join(sections.get("system", [])).strip() or None
        return cls(system=system, user="\n".join(sections.get("user", [])).strip())

    @classmethod
    def load(cls, path: Path) -> PromptTemplate:
        return cls.parse(read_text(path, "prompt file"))

    @classmethod
    def of(cls, spec: str | Mapping[str, str], base_dir: Path) -> PromptTemplate:
        """A task file's `prompt:`: a file path (relative to the task), or `{system, user}`."""
        if isinstance(spec, Mapping):
            return cls(system=spec.get("system"), user=str(spec.get("user", "")))
        return cls.load(resolve_prompt(spec, base_dir))

    def fields(self) -> set[str]:
        """The variables the template names (`{a}`, `{a.b}` and `{a[0]}` all name `a`)."""
        out: set[str] = set()
        for part in (self.system or "", self.user):
            for _, name, _, _ in string.Formatter().parse(part):
                if name:
                    out.add(re.split(r"[.\[]", name, maxsplit=1)[0])
        return out

    def messages(self, **values: Any) -> Messages:
        out: Messages = []
        if self.system:
            out.append({"role": "system", "content": self.system.format(**values)})
        out.append({"role": "user", "content": self.user.format(**values)})
        return out


def resolve_prompt(spec: str, base_dir: Path) -> Path:
    """A prompt file relative to the task's folder, else one of the bundled prompts by name."""
    path = Path(spec).expanduser()
    if not path.is_absolute():
        local = base_dir / path
        path = (
            local
            if local.exists() or not (BUNDLED_PROMPTS / path).exists()
            else (BUNDLED_PROMPTS / path)
        )
    return path
