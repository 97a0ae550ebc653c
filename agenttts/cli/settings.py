"""Command-line flags derived from the run settings (`Context`), so a setting is declared once.

Flag = the field's name with dashes (plus the older spellings its `aliases` keep), type from its
annotation, help = its description and its default. A command offers all settings or a declared
subset, and may give some its own default (the demo's small batches, the bench's trial cap).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from agenttts.graph.context import Setting, base_type, declared, default_of, description_of


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def offered(names: Sequence[str] | None = None) -> list[tuple[str, Setting]]:
    """The settings a command offers (all when `names` is None), in declaration order."""
    every = [(name, flags) for name, _, flags in declared()]
    unknown = set(names or ()) - {name for name, _ in every}
    if unknown:
        raise ValueError(f"no such setting: {', '.join(sorted(unknown))}")
    return [(name, flags) for name, flags in every if names is None or name in names]


def add_setting_flags(
    parser: argparse.ArgumentParser,
    names: Sequence[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """One flag per offered setting. Without a command default a flag's value is None unless
    given, so only flags given explicitly reach the run (a resumed thread keeps the rest)."""
    defaults = defaults or {}
    for name, flags in offered(names):
        tp = base_type(name)
        kwargs: dict[str, Any] = {"dest": name, "default": defaults.get(name)}
        if get_origin(tp) is list:
            kwargs.update(type=_items(get_args(tp)[0], flags.choices), action="extend")
        elif tp is bool:  # --name / --no-name
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = tp
        if flags.metavar is not None:
            kwargs["metavar"] = flags.metavar
        default = defaults.get(name, default_of(name))
        notes = [f"default {_shown(default)}"]
        if flags.off is not None:
            notes.append(f"{flags.off}: off")
        if kwargs.get("action") == "extend":
            notes.append("comma-separated, repeatable")
        kwargs["help"] = f"{description_of(name)} ({'; '.join(notes)})".replace("%", "%%")
        parser.add_argument(flag(name), *flags.aliases, **kwargs)


def setting_overrides(
    args: argparse.Namespace, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Context fields from the flags that have a value, as the Context holds them."""
    out: dict[str, Any] = {}
    for name, flags in offered(names):
        value = getattr(args, name, None)
        if value is None:
            continue
        if flags.off is not None and value == flags.off:
            value = None
        elif isinstance(value, list):
            value = sorted(set(value))
        elif flags.path:
            value = str(Path(value).expanduser())
        out[name] = value
    return out


def _items(item: type, choices: tuple[Any, ...] | None) -> Any:
    """A list flag's value: one or more comma-separated items of `item` (`--budgets 250,500`),
    each among `choices` where the setting has them."""

    def parse(text: str) -> list[Any]:
        out = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                value = item(part)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"invalid {item.__name__} value: {part!r}"
                ) from None
            if choices is not None and value not in choices:
                allowed = ", ".join(map(str, choices))
                raise argparse.ArgumentTypeError(
                    f"invalid choice: {value!r} (choose from {allowed})"
                )
            out.append(value)
        return out

    parse.__name__ = item.__name__  # argparse names the type in its messages
    return parse


def _shown(value: Any) -> str:
    return "none" if value in (None, []) else str(value)
