"""The agent's prompts: plain text files, read at call time, overridable, with insight blocks.

Shipped files live in the ``prompts/`` folder (installed as ``agenttts.prompts``): one per role
(``system``, ``preferences``, ``guidelines``, ``proposal``) and one per insight
(``insights/1.txt`` .. ``insights/3.txt``). A user directory overrides any of them by the same
relative name. Files are read on every call, so an edit applies at the next node run, also in a
running ``langgraph dev`` server. A role's ``{insights}`` placeholder receives the blocks of the
insights that role uses, minus the ablated ones.

Placeholders are ``{name}`` for the names a role is given (`ROLE_FIELDS`); any other brace (a JSON
example in the prompt) is left alone, so users can edit prompts without escaping anything. A user's
folder is checked before a run spends anything (`check_prompts_dir`, from the run settings' checks,
so Studio runs get it too): a file agenttts does not read (a misspelled name), a placeholder the
role is not given (``{budgett}`` would reach the agent verbatim), a field written with a format
spec, attribute or index (``{guidelines:>10}``, ``{guidelines.__class__}``: only ``{name}`` is
filled, the rest would be sent as written), a ``{`` or ``}`` without its partner, a role prompt
without the placeholders it cannot work without (`REQUIRED_FIELDS`), a prompt name that is not a
regular file (a folder named ``proposal.txt`` would be skipped for the shipped prompt), a file
that is not UTF-8.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path

from agenttts.environment.user_files import UnreadableFile, read_text
from agenttts.errors import InputError

ROLES = ("system", "preferences", "guidelines", "proposal")
#: The paper's three insights, by number: one prompt block each (``insights/N.txt``); the
#: `no_insights` setting and the ``NAME-noN`` proposer variants switch them off by these numbers.
INSIGHTS = (1, 2, 3)
#: Which insights each role's prompt carries (the paper: preference summary <- insight 1;
#: guidelines <- insights 2 and 3; the proposal sees all three).
ROLE_INSIGHTS: dict[str, tuple[int, ...]] = {
    "system": (),
    "preferences": (1,),
    "guidelines": (2, 3),
    "proposal": (1, 2, 3),
}

#: The fields each role's prompt is given (besides ``insights``): what the agent's proposer passes.
ROLE_FIELDS: dict[str, tuple[str, ...]] = {
    "system": (),
    "preferences": ("task", "archive", "preferences", "batch_size"),
    "guidelines": ("task", "archive", "preferences", "batch_size", "previous"),
    "proposal": (
        "task",
        "archive",
        "preferences",
        "batch_size",
        "guidelines",
        "evidence",
        "curves",
        "costs",
    ),
}
#: Placeholders a role's prompt must keep: without the task the agent does not know the models and
#: the budget, without the archive it searches blind.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "preferences": ("task", "archive"),
    "guidelines": ("task", "archive"),
    "proposal": ("task", "archive"),
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: A field with what Python's format would add to it (`:spec`, `!r`, `.attr`, `[index]`), which
#: `fill` does not do: a prompt naming a field so means the field, and would not get it.
_DECORATED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)([:!.\[][^{}]*)\}")
#: Every field some role is given.
_FIELDS = frozenset(f for fields in ROLE_FIELDS.values() for f in fields) | {"insights"}


def shipped_dir() -> Path:
    import agenttts.prompts

    return Path(agenttts.prompts.__file__).resolve().parent


def prompt_path(name: str, prompts_dir: str | Path | None = None) -> Path:
    """Where `name` (e.g. ``guidelines`` or ``insights/2``) is read from: the user's copy first."""
    rel = name if name.endswith(".txt") else f"{name}.txt"
    if prompts_dir is not None:
        user = Path(prompts_dir).expanduser()
        if not user.is_dir():
            raise InputError(f"prompts directory {user} does not exist")
        if (user / rel).is_file():
            return user / rel
    path = shipped_dir() / rel
    if not path.is_file():
        raise InputError(f"no prompt file {rel!r} (shipped prompts are in {shipped_dir()})")
    return path


def read_prompt(name: str, prompts_dir: str | Path | None = None) -> str:
    return prompt_path(name, prompts_dir).read_text(encoding="utf-8").strip()


def check_prompts_dir(prompts_dir: str | Path | None) -> list[str]:
    """Every problem with a user prompts directory, for one clear error before a run starts."""
    if prompts_dir is None:
        return []
    user = Path(prompts_dir).expanduser()
    if not user.is_dir():
        return [f"prompts directory {user} does not exist"]
    known = {f"{r}.txt": r for r in ROLES} | {f"insights/{i}.txt": None for i in INSIGHTS}
    problems: list[str] = []
    for path in sorted(user.rglob("*")):
        rel = path.relative_to(user).as_posix()
        if rel not in known:
            if path.is_file() and (
                path.suffix == ".txt" or Path(rel).with_suffix(".txt").as_posix() in known
            ):
                near = difflib.get_close_matches(Path(rel).with_suffix(".txt").as_posix(), known)
                hint = f"did you mean {near[0]}?" if near else f"known: {', '.join(known)}"
                problems.append(f"{path}: not a prompt agenttts reads ({hint})")
            continue
        try:
            text = read_text(path, "prompt file")
        except UnreadableFile as e:  # a folder or a FIFO by a prompt's name, not UTF-8, ...
            problems.append(str(e))
            continue
        problems += [f"{path}: {p}" for p in _template_problems(text, known[rel])]
    return problems


def _template_problems(text: str, role: str | None) -> list[str]:
    """A prompt file's problems; `role` None is an insight block (inserted as written)."""
    problems = [f"{{ or }} without its partner at {where}" for where in _unpaired(text)]
    problems += [
        f"{{{name}{extra}}}: only a plain {{{name}}} is filled; this would be sent as written"
        for name, extra in _DECORATED.findall(text)
        if name in _FIELDS
    ]
    used = set(_PLACEHOLDER.findall(text))
    if role is None:
        problems += [
            f"{{{name}}}: insight blocks are inserted as written, placeholders are not filled"
            for name in sorted(used)
        ]
        return problems
    given = {*ROLE_FIELDS[role], "insights"}
    problems += [
        f"unknown placeholder {{{name}}} (this prompt is given: "
        + ", ".join(f"{{{g}}}" for g in sorted(given))
        + ")"
        for name in sorted(used - given)
    ]
    problems += [
        f"lacks {{{name}}}: the agent would not see the "
        + ("task (models, budget)" if name == "task" else "trials so far")
        for name in REQUIRED_FIELDS.get(role, ())
        if name not in used
    ]
    return problems


def _unpaired(text: str) -> list[str]:
    """Where braces do not pair up (line:column), so a stray `{` is caught before a run."""
    open_at: list[str] = []
    stray: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        for col, char in enumerate(line, start=1):
            if char == "{":
                open_at.append(f"line {n}:{col}")
            elif char == "}":
                if open_at:
                    open_at.pop()
                else:
                    stray.append(f"line {n}:{col}")
    return stray + open_at


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


def role_prompt(
    role: str,
    *,
    no_insights: Iterable[int] = (),
    prompts_dir: str | Path | None = None,
    **fields: object,
) -> str:
    """A role's prompt with its insight blocks composed in and the fields filled."""
    if role not in ROLES:
        raise InputError(f"unknown prompt role {role!r} (known: {', '.join(ROLES)})")
    blocks = insight_blocks(ROLE_INSIGHTS[role], no_insights=no_insights, prompts_dir=prompts_dir)
    text = fill(read_prompt(role, prompts_dir), {"insights": blocks, **fields})
    return re.sub(r"\n{3,}", "\n\n", text).strip()
