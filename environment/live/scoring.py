"""Scoring a user pipeline's prediction for one data item: built-in metrics and user callables.

`environment.settings.metric` names one metric or several: a built-in name, or a
`"module:callable"` that takes `(prediction, item)` and returns a float (reported under the
callable's name) or a mapping of metric name to float. Without it, every name in the task's
`metrics:` must be a built-in. Built-ins compare against the item's gold field (`gold:`, by default
the first of `answers`, `answer`, `gold`, `label`), except `pass@tests`, which executes the
predicted code against the item's tests in the sandbox (`environment/sandbox.py`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment import metrics as m
from agenttts.environment.live.loading import load_items, load_object
from agenttts.environment.live.parsers import strip_code_fence
from agenttts.environment.splits import Split, split_items
from agenttts.environment.task import Task
from agenttts.errors import InputError

GOLD_FIELDS = ("answers", "answer", "gold", "label")


class ScoringSettings(BaseModel):
    """Where the built-in metrics find the truth in an item, and how code is tested."""

    model_config = ConfigDict(extra="forbid")

    metric: str | list[str] | None = Field(
        default=None, description="built-in name(s) or module:callable; default: the metrics"
    )
    gold: str | None = Field(default=None, description="item field with the accepted answer(s)")
    tests: str = Field(default="test_list", description="pass@tests: item field, assert lines")
    test_setup: str = Field(default="test_setup_code", description="pass@tests: setup field")
    test_timeout_s: float = Field(default=10.0, gt=0, description="pass@tests: per solution")


_NO_GOLD = object()


def gold_of(item: Mapping[str, Any], settings: ScoringSettings, default: Any = _NO_GOLD) -> Any:
    """The item's accepted answer(s); KeyError without one, unless a `default` is given."""
    if settings.gold is not None and settings.gold in item:
        return item[settings.gold]
    for name in () if settings.gold is not None else GOLD_FIELDS:
        if name in item:
            return item[name]
    if default is not _NO_GOLD:
        return default
    if settings.gold is not None:
        raise KeyError(settings.gold)
    raise KeyError(f"the item has no gold field (tried {', '.join(GOLD_FIELDS)}; set `gold:`)")


def _text(prediction: Any) -> str | None:
    return None if prediction is None else str(prediction)


def _pass_at_tests(prediction: Any, item: Mapping[str, Any], s: ScoringSettings) -> float:
    from agenttts.environment.sandbox import run_tests

    tests = item[s.tests]
    code = strip_code_fence(str(prediction or ""))
    setup = str(item.get(s.test_setup) or "")
    return float(run_tests(code, list(tests), setup=setup, timeout_s=s.test_timeout_s).all_passed)


Builtin = Callable[[Any, Mapping[str, Any], ScoringSettings], float]

BUILTIN_METRICS: dict[str, tuple[Builtin, str]] = {
    "em": (
        lambda p, i, s: m.exact_match(_text(p), gold_of(i, s)),
        "exact match (SQuAD-normalised)",
    ),
    "f1": (lambda p, i, s: m.token_f1(_text(p), gold_of(i, s)), "token F1 (SQuAD-normalised)"),
    "accuracy": (
        lambda p, i, s: m.accuracy(p, gold_of(i, s)),
        "label equality (trimmed, any case)",
    ),
    "contains": (
        lambda p, i, s: m.contains(_text(p), gold_of(i, s)),
        "the gold occurs in the answer",
    ),
    "numeric": (
        lambda p, i, s: m.numeric_match(p, gold_of(i, s)),
        "the last number equals the gold",
    ),
    "pass@tests": (_pass_at_tests, "the predicted code passes every test of the item (sandboxed)"),
}


@dataclass(frozen=True)
class Metric:
    """One entry of `metric:`: a built-in, or a user callable with the name it reports under."""

    spec: str
    name: str
    builtin: Builtin | None = None
    call: Callable[..., Any] | None = None


def load_metrics(specs: list[str], base_dir: Any) -> list[Metric]:
    """Resolve every `metric:` entry (InputError naming the first that cannot be used)."""
    out: list[Metric] = []
    for spec in specs:
        if spec in BUILTIN_METRICS:
            out.append(Metric(spec, spec, builtin=BUILTIN_METRICS[spec][0]))
            continue
        if ":" not in spec:
            raise InputError(
                f"unknown metric {spec!r} (built-in: {', '.join(BUILTIN_METRICS)}; or give "
                '"module:callable")'
            )
        fn = load_object(spec, base_dir, what="metric")
        if not callable(fn):
            raise InputError(f"metric {spec!r} is a {type(fn).__name__}, not a callable")
        try:
            inspect.signature(fn).bind(None, None)
        except TypeError:
            raise InputError(
                f"metric {spec!r} cannot be called as metric(prediction, item): "
                f"its signature is {inspect.signature(fn)}"
            ) from None
        except ValueError:  # a builtin without a signature: let the call decide
            pass
        out.append(Metric(spec, spec.rpartition(":")[2].rpartition(".")[2], call=fn))
    return out


class Scorer:
    """Turns (prediction, item) into the task's metrics; a failure here fails the item."""

    def __init__(self, names: list[str], settings: ScoringSettings, base_dir: Any):
        specs = settings.metric if settings.metric is not None else names
        self.names = names
        self.settings = settings
        self.metrics = load_metrics([specs] if isinstance(specs, str) else list(specs), base_dir)

    @classmethod
    def problems(cls, names: list[str], settings: ScoringSettings, base_dir: Any) -> list[str]:
        """What `task validate` reports: unusable entries, and task metrics nobody produces."""
        try:
            scorer = cls(names, settings, base_dir)
        except InputError as e:
            return [str(e)]
        produced = {x.name for x in scorer.metrics}
        maybe_mapping = any(x.call is not None for x in scorer.metrics)
        missing = [n for n in names if n not in produced]
        if missing and not maybe_mapping:
            return [
                f"metric(s) {missing} are not built-in (built-in: {', '.join(BUILTIN_METRICS)}): "
                "name a callable that returns them in environment.settings.metric"
            ]
        return []

    async def score(self, prediction: Any, item: Mapping[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in self.metrics:
            if metric.builtin is not None and metric.spec == "pass@tests":  # a subprocess
                value: Any = await asyncio.to_thread(
                    metric.builtin, prediction, item, self.settings
                )
            elif metric.builtin is not None:
                value = metric.builtin(prediction, item, self.settings)
            else:
                assert metric.call is not None
                value = metric.call(prediction, item)
                if inspect.isawaitable(value):
                    value = await value
            if isinstance(value, Mapping):
                out.update({str(k): float(v) for k, v in value.items()})
            else:
                out[metric.name] = float(value)
        missing = [n for n in self.names if n not in out]
        if missing:
            raise KeyError(f"the metric returned no {missing} (it gave {sorted(out)})")
        return {n: out[n] for n in self.names}


class DataProgram:
    """What the python and chain programs share: the task's data file, split by the task's seed,
    and scoring by the task's metrics (one copy, so both kinds split and score alike)."""

    def __init__(self, task: Task, settings: ScoringSettings):
        self.task = task
        self.scorer = Scorer(list(task.metrics), settings, task.base_dir)
        assert task.data.path is not None
        self._items = load_items(task.resolve(task.data.path))

    def items(self, split: Split) -> list[dict[str, Any]]:
        return split_items(self.task.data, self._items, split)

    async def score(self, prediction: Any, item: dict[str, Any]) -> dict[str, float]:
        return await self.scorer.score(prediction, item)
