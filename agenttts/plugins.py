"""Name -> class registries that import lazily (a replay run never imports the live stack)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from agenttts.errors import InputError


def load_named(registry: Mapping[str, str], name: str, what: str) -> Any:
    """Import `registry[name]` ("module:attr"); an unknown one: InputError, listing the known."""
    try:
        target = registry[name]
    except KeyError:
        raise InputError(f"unknown {what} {name!r} (known: {', '.join(registry)})") from None
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)
