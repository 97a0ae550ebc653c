"""Loading what a task file names from user code and data, with errors a user can act on.

`"package.module:attr"` resolves first against the task file's folder (a `pipeline.py` or a
package beside the task, which may import its siblings: the folder goes first on `sys.path`; a
module of the same name loaded from another folder is replaced), then against installed packages;
`"file.py:attr"` names a file relative to the task. A data file is a JSON list
of objects or JSON Lines, one object per line. Every failure is an `InputError` saying what and
where, so `task validate` reports it before anything is spent.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from agenttts.errors import InputError

_LOCK = threading.Lock()


def _local_file(module: str, base_dir: Path) -> Path | None:
    stem = base_dir.joinpath(*module.split("."))
    for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import(module: str, base_dir: Path, spec: str, what: str) -> ModuleType:
    try:
        if module.endswith(".py") or "/" in module:
            path = (base_dir / module).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no file {path}")
            name = f"agenttts_user_{abs(hash(str(path))):x}_{path.stem}"
            with _LOCK:
                if name not in sys.modules:
                    if str(path.parent) not in sys.path:
                        sys.path.insert(0, str(path.parent))
                    loader = importlib.util.spec_from_file_location(name, path)
                    assert loader is not None and loader.loader is not None
                    loaded = importlib.util.module_from_spec(loader)
                    sys.modules[name] = loaded
                    try:
                        loader.loader.exec_module(loaded)
                    except BaseException:
                        del sys.modules[name]
                        raise
            return sys.modules[name]
        local = _local_file(module, base_dir)
        with _LOCK:
            if local is not None:
                root = str(base_dir.resolve())
                if root in sys.path:
                    sys.path.remove(root)
                sys.path.insert(0, root)
                top = module.partition(".")[0]
                known = getattr(sys.modules.get(module), "__file__", None)
                if known and Path(known).resolve() != local.resolve():
                    # the same name from another task's folder: this task's file wins from now
                    # on (programs already loaded keep the objects they hold)
                    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
                        del sys.modules[name]
                    importlib.invalidate_caches()
            return importlib.import_module(module)
    except InputError:
        raise
    except BaseException as e:  # user code at import: anything can happen, say what it was
        if isinstance(e, KeyboardInterrupt):
            raise
        raise InputError(
            f"{what} {spec!r}: cannot import {module!r} (looked beside the task in {base_dir} "
            f"and in installed packages): {type(e).__name__}: {e}"
        ) from None


def load_object(spec: str, base_dir: str | Path, *, what: str = "object") -> Any:
    """The object `spec` ("module:attr", attr may be dotted) names."""
    return import_spec(spec, base_dir, what=what)[1]


def import_spec(spec: str, base_dir: str | Path, *, what: str = "object") -> tuple[ModuleType, Any]:
    """The module `spec` names and the object in it."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise InputError(f'{what} {spec!r}: give it as "package.module:name"')
    loaded = _import(module, Path(base_dir), spec, what)
    obj: Any = loaded
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"{what} {spec!r}: {module!r} has no attribute {attr!r}") from None
    return loaded, obj


def load_items(path: Path) -> list[dict[str, Any]]:
    """Data items: a JSON list of objects, or JSON Lines (blank lines skipped)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"data file {path}: {e.strerror or e}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"data file {path}: not valid JSON: {e}") from None
        where = [f"item {i}" for i in range(len(rows))]
    else:
        rows, where = [], []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(
                    f"data file {path}, line {n}: not valid JSON ({e.msg}); a data file is a "
                    "JSON list of objects or one JSON object per line"
                ) from None
            where.append(f"line {n}")
    for row, at in zip(rows, where, strict=True):
        if not isinstance(row, dict):
            raise InputError(f"data file {path}, {at}: an item must be a JSON object")
    if not rows:
        raise InputError(f"data file {path}: no items")
    return rows
