"""Reading the files a user hands agenttts: task and deployment YAML, `--config @FILE`, prompts.

A path may name anything: only a regular file is read (a FIFO would block for ever, `/dev/zero`
never ends), and at most `MAX_BYTES` of it. YAML numbers are read as YAML 1.2 reads them (`70e9`
and `1.0e400` are numbers, which PyYAML's YAML 1.1 leaves as strings for pydantic to coerce), so
the schemas can be strict (`STRICT`): a number must be a finite number of its type, never a
string such as "inf" or a boolean. An error quotes at most a short, escaped excerpt of a file (a
task path may be a link to a system file) and says where: `file:line:column` for YAML.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, ValidationError

from agenttts.errors import InputError

#: Most bytes read from one such file: a task file is a few KB.
MAX_BYTES = 1 << 20
#: Most characters of a file's content an error message quotes.
EXCERPT_CHARS = 40

#: The pydantic config of every schema read from a user's file: unknown keys are typos, numbers
#: are finite and of their type (no "inf", no `true` for 1), strings are strings.
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class UnreadableFile(InputError):
    """A file that cannot be read as the text it should be; `where` is its path (with
    `:line:column` for a YAML error), `reason` what is wrong."""

    def __init__(self, where: str | Path, reason: str) -> None:
        self.where = str(where)
        self.reason = reason
        super().__init__(f"{self.where}: {reason}")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` quoted and escaped (control characters shown, not sent to the terminal), cut to
    `limit` characters: the most of a file's content a message may quote."""
    cut = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(cut)


def key_text(key: object) -> str:
    """A mapping key as a field name in a message: as written when it is a plain name, else an
    excerpt (a key is the file's content too)."""
    text = str(key)
    plain = re.fullmatch(r"[\w.@/+-]{1,64}", text) is not None
    return text if plain else excerpt(text)


_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def file_kind(path: str | Path) -> str | None:
    """What `path` is when it exists and is neither a regular file nor a folder ("a FIFO (named
    pipe)", "a character device", ...): nothing agenttts should open as a file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_text(path: str | Path, what: str = "file") -> str:
    """A regular UTF-8 file's text, at most `MAX_BYTES`; `UnreadableFile` naming `what` it
    should have been otherwise."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise UnreadableFile(p, f"no such {what}") from None
    except OSError as e:
        raise UnreadableFile(p, e.strerror or str(e)) from None
    if stat.S_ISDIR(mode):
        raise UnreadableFile(p, f"is a folder, not a {what}")
    kind = file_kind(p)
    if kind is not None:
        raise UnreadableFile(p, f"is {kind}, not a {what}")
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_BYTES + 1)  # not its size: a file may grow while read
    except OSError as e:
        raise UnreadableFile(p, e.strerror or str(e)) from None
    if len(data) > MAX_BYTES:
        raise UnreadableFile(p, f"is larger than {MAX_BYTES // 1024} KB: not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnreadableFile(p, f"not UTF-8 text (byte {e.start}): {e.reason}") from None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading exponent numbers without a dot or a signed exponent
    (`70e9`, `1.0e400`) as numbers, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def load_yaml(path: str | Path, what: str = "file") -> Any:
    """A YAML file's content; `UnreadableFile` for a file that cannot be read, or one line
    `file:line:column: not valid YAML: why` for one that does not parse."""
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        why = ": ".join(x for x in (e.context, e.problem) if x)
        raise UnreadableFile(where, f"not valid YAML: {_printable(why)}") from None
    except yaml.YAMLError as e:
        raise UnreadableFile(path, f"not valid YAML: {_printable(str(e))}") from None


def _printable(text: str, limit: int = 160) -> str:
    """A parser's message (it may quote a character of the file) on one escaped line."""
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_location(loc: Sequence[Any], raw: Any) -> str:
    """A pydantic error location as a field path, list items named by their `name` where they
    have one (`stages[qa].models[m]`), keys quoted when they are not plain names."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            entry = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
            name = entry.get("name") if isinstance(entry, Mapping) else None
            label = key_text(name) if isinstance(name, str) and name else str(item)
            if parts:
                parts[-1] = f"{parts[-1]}[{label}]"
            else:
                parts.append(f"[{label}]")
            node = entry
        else:
            parts.append(key_text(item))
            node = node.get(item) if isinstance(node, Mapping) else None
    return ".".join(parts) or "<root>"


def error_message(err: Mapping[str, Any]) -> str:
    """One pydantic error's message, with what was given where the type was wrong (quoted
    short: it is the file's content)."""
    msg = str(err["msg"])
    if err.get("type") in {"model_type", "model_attributes_type", "dict_type"}:
        msg = "Input should be a mapping"  # not "... or instance of Stage": a class name
    if err.get("type") in {"extra_forbidden", "missing"} or "input" not in err:
        return msg
    given = err["input"]
    if isinstance(given, bool):
        shown = "true" if given else "false"
    elif isinstance(given, int | float):
        shown = repr(given)
    elif isinstance(given, str):
        shown = excerpt(given)
    else:
        return msg
    return f"{msg} (got {shown})"


def validation_problems(error: ValidationError, raw: Any) -> list[tuple[str, str]]:
    """(field, message) per pydantic error, one each."""
    return [(error_location(e["loc"], raw), error_message(e)) for e in error.errors()]
