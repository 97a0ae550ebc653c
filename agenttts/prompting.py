"""The agent's prompts: plain text files, read at call time, overridable, with insight blocks.

Shipped files live in the ``prompts/`` folder (installed as ``agenttts.prompts``): one per role
(``system``, ``preferences``, ``guidelines``, ``proposal``) and one per insight
(``insights/1.txt`` .. ``insights/3.txt``). A user directory overrides any of them by the same
relative name. Files are read on every call, so an edit applies at the next node run, also in a
running ``langgraph dev`` server. A role's ``{insights}`` placeholder receives the blocks of the
insights that role uses, minus the ablated ones.

Placeholders are ``{name}`` for the names a role is given; any other brace (a JSON example in the
prompt) is left alone, so users can edit prompts without escaping anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

ROLES = ("system", "preferences", "guidelines", "proposal")
INSIGHTS = (1, 2, 3)
#: Which insights each role's prompt carries (the paper: preference summary <- insight 1;
#: guidelines <- insights 2 and 3; the proposal sees all three).
ROLE_INSIGHTS: dict[str, tuple[int, ...]] = {
    "system": (),
    "preferences": (1,),
    "guidelines": (2, 3),
    "proposal": (1, 2, 3),
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptError(ValueError):
    """A prompt file that cannot be used (missing, or a user directory that does not exist)."""


def shipped_dir() -> Path:
    import agenttts.prompts

    return Path(agenttts.prompts.__file__).resolve().parent


def prompt_path(name: str, prompts_dir: str | Path | None = None) -> Path:
    """Where `name` (e.g. ``guidelines`` or ``insights/2``) is read from: the user's copy first."""
    rel = name if name.endswith(".txt") else f"{name}.txt"
    if prompts_dir is not None:
        user = Path(prompts_dir).expanduser()
        if not user.is_dir():
            raise PromptError(f"prompts directory {user} does not exist")
        if (user / rel).is_file():
            return user / rel
    path = shipped_dir() / rel
    if not path.is_file():
        raise PromptError(f"no prompt file {rel!r} (shipped prompts are in {shipped_dir()})")
    return path


def read_prompt(name: str, prompts_dir: str | Path | None = None) -> str:
    return prompt_path(name, prompts_dir).read_text(encoding="utf-8").strip()


def check_prompts_dir(prompts_dir: str | Path | None) -> list[str]:
    """Problems with a user prompts directory, for a clear error before a run starts."""
    if prompts_dir is None:
        return []
    user = Path(prompts_dir).expanduser()
    if not user.is_dir():
        return [f"prompts directory {user} does not exist"]
    known = {f"{r}.txt" for r in ROLES} | {f"insights/{i}.txt" for i in INSIGHTS}
    found = {p.relative_to(user).as_posix() for p in user.rglob("*.txt")}
    return [
        f"{user / f}: not a prompt agenttts uses (known: {', '.join(sorted(known))})"
        for f in sorted(found - known)
    ]


def insight_blocks(
    numbers: Iterable[int],
    *,
    no_insights: Iterable[int] = (),
    prompts_dir: str | Path | None = None,
) -> str:
    """The blocks of the given insights, in order, without the ablated ones."""
    off = set(no_insights)
    return "\n\n".join(read_prompt(f"insights/{i}", prompts_dir) for i in numbers if i not in off)


def fill(template: str, fields: dict[str, object]) -> str:
    """Substitute ``{name}`` for the given names only; every other brace stays as written."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        return str(fields[key]) if key in fields else m.group(0)

    return _PLACEHOLDER.sub(sub, template)


def render(
    role: str,
    *,
    no_insights: Iterable[int] = (),
    prompts_dir: str | Path | None = None,
    **fields: object,
) -> str:
    """A role's prompt with its insight blocks composed in and the fields filled."""
    if role not in ROLES:
        raise PromptError(f"unknown prompt role {role!r} (known: {', '.join(ROLES)})")
    blocks = insight_blocks(ROLE_INSIGHTS[role], no_insights=no_insights, prompts_dir=prompts_dir)
    text = fill(read_prompt(role, prompts_dir), {"insights": blocks, **fields})
    return re.sub(r"\n{3,}", "\n\n", text).strip()
