"""Command-line flags derived from the run settings (`Context`), so a setting is declared once.

Flag = the field's name with dashes (plus the older spellings its `aliases` keep), type from its
annotation, help = its description and its default. A command offers all settings or a declared
subset, and may give some its own default (the demo's small batches, the bench's trial cap).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from agenttts.graph.context import Context, base_type, default_of


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def declared(names: Sequence[str] | None = None) -> list[dataclasses.Field[Any]]:
    """The settings a command offers (all when `names` is None), in declaration order."""
    fields = dataclasses.fields(Context)
    unknown = set(names or ()) - {f.name for f in fields}
    if unknown:
        raise ValueError(f"no such setting: {', '.join(sorted(unknown))}")
    return [f for f in fields if names is None or f.name in names]


def add_setting_flags(
    parser: argparse.ArgumentParser,
    names: Sequence[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """One flag per offered setting. Without a command default a flag's value is None unless
    given, so only flags given explicitly reach the run (a resumed thread keeps the rest)."""
    defaults = defaults or {}
    for f in declared(names):
        meta = f.metadata
        tp = base_type(f.name)
        kwargs: dict[str, Any] = {"dest": f.name, "default": defaults.get(f.name)}
        if get_origin(tp) is list:
            kwargs.update(type=get_args(tp)[0], action="append", choices=meta.get("choices"))
        elif tp is bool:  # --name / --no-name
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = tp
        if "metavar" in meta:
            kwargs["metavar"] = meta["metavar"]
        default = defaults.get(f.name, default_of(f.name))
        notes = [f"default {_shown(default)}"]
        if "off" in meta:
            notes.append(f"{meta['off']}: off")
        if kwargs.get("action") == "append":
            notes.append("repeatable")
        kwargs["help"] = f"{meta['description']} ({'; '.join(notes)})".replace("%", "%%")
        parser.add_argument(flag(f.name), *meta.get("aliases", ()), **kwargs)


def setting_overrides(
    args: argparse.Namespace, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Context fields from the flags that have a value, as the Context holds them."""
    out: dict[str, Any] = {}
    for f in declared(names):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if "off" in f.metadata and value == f.metadata["off"]:
            value = None
        elif isinstance(value, list):
            value = sorted(set(value))
        elif f.metadata.get("path"):
            value = str(Path(value).expanduser())
        out[f.name] = value
    return out


def _shown(value: Any) -> str:
    return "none" if value in (None, []) else str(value)
