"""Reading one sample's text into the value its stage aggregates.

Plain functions for user pipelines, plus `Parser`: the declarative form a chain stage names in
YAML (`parse: answer`, `{after: "Final:"}`, `{regex: ...}`, `{json: field}`, `{ids: field}`,
`text`). A sample that cannot be read parses to None (or no ids) rather than failing its item:
the aggregators already let readable samples outvote unreadable ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_ANSWER = re.compile(r"answer\s*[:：]", re.IGNORECASE)


def parse_answer(text: str, marker: str | None = None) -> str | None:
    """The short answer in a sample: after the last marker ("Answer:" by default, any case),
    else the first non-empty line; quotes, bold and a final period are stripped."""
    pattern = _ANSWER if marker is None else re.compile(re.escape(marker), re.IGNORECASE)
    marks = list(pattern.finditer(text))
    tail = text[marks[-1].end() :] if marks else text
    for line in tail.splitlines():
        line = line.strip().strip("*\"'` .")
        if line:
            return line
    return None


def parse_ids(text: str, shown: int, limit: int) -> list[int]:
    """Numbers 1..shown named in a sample, in order, without repeats, at most `limit`."""
    out: list[int] = []
    for m in re.finditer(r"\d+", text):
        n = int(m.group())
        if 1 <= n <= shown and n not in out:
            out.append(n)
            if len(out) >= limit:
                break
    return out


def parse_regex(text: str, pattern: str) -> str | None:
    """The last match of `pattern` (its first group if it has one), stripped."""
    found = list(re.finditer(pattern, text, re.IGNORECASE | re.DOTALL))
    if not found:
        return None
    m = found[-1]
    return (m.group(1) if m.groups() else m.group(0)).strip()


def parse_json_field(text: str, field: str) -> Any:
    """`field` (dotted for nesting) of the first JSON object in the text; None if absent."""
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            continue
        for key in field.split("."):
            if not isinstance(value, Mapping) or key not in value:
                return None
            value = value[key]
        return value
    return None


def strip_code_fence(text: str) -> str:
    """The body of the first ``` fenced block (any language tag), else the text itself."""
    m = re.search(r"```[\w+-]*\n(.*?)(?:```|$)", text, re.DOTALL)
    return m.group(1).strip("\n") if m else text.strip()


class Parser(BaseModel):
    """How a chain stage reads its samples; exactly one way (default: `answer`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["answer", "after", "regex", "json", "ids", "text", "code"] = "answer"
    arg: str | None = Field(default=None, description="marker, pattern, JSON field or item field")
    max: int = Field(default=5, ge=1, description="ids: most ids read from one sample")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, raw: Any) -> Any:
        """`parse: answer` | `{after: "Final:"}` | `{ids: passages, max: 4}` -> kind and arg."""
        if isinstance(raw, str):
            return {"kind": raw}
        if isinstance(raw, Mapping) and "kind" not in raw:
            kinds = [k for k in raw if k != "max"]
            if len(kinds) != 1:
                raise ValueError("give exactly one of: answer, after, regex, json, ids, text, code")
            kind = kinds[0]
            return {"kind": kind, "arg": raw[kind], **({"max": raw["max"]} if "max" in raw else {})}
        return raw

    @model_validator(mode="after")
    def _needs_arg(self) -> Parser:
        if self.kind in {"after", "regex", "json"} and not self.arg:
            raise ValueError(f"`{self.kind}` needs a value (e.g. {{{self.kind}: ...}})")
        if self.kind == "regex" and self.arg:
            try:
                re.compile(self.arg)
            except re.error as e:
                raise ValueError(f"bad regex {self.arg!r}: {e}") from None
        return self

    def __call__(self, text: str, item: Mapping[str, Any] | None = None) -> Any:
        """One sample's value. `ids` gives the numbers named (1-based, as the prompt lists them),
        only those within the item field's length when the parser names one."""
        if self.kind == "answer":
            return parse_answer(text)
        if self.kind == "after":
            return parse_answer(text, self.arg)
        if self.kind == "regex":
            return parse_regex(text, self.arg or "")
        if self.kind == "json":
            return parse_json_field(text, self.arg or "")
        if self.kind == "code":
            return strip_code_fence(text)
        if self.kind == "ids":
            options: Sequence[Any] = (item or {}).get(self.arg, []) if self.arg else []
            shown = len(options) if self.arg else 10**6
            return parse_ids(text, shown, self.max)
        return text.strip()
