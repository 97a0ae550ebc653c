"""`environment: {kind: python}`: search a user's own pipeline, written in Python.

    environment:
      kind: python
      settings:
        pipeline: my_pipeline:run     # async def run(item, stages) -> prediction
        metric: f1                    # or [em, f1], or "my_metrics:score"

`pipeline:` is an async (or plain) function called as `pipeline(item, stages)` for every data
item, or a compiled LangGraph graph, invoked with the item (or `input:` mapping state keys to item
fields) and read at `output:` (a state key; default: the whole final state). The pipeline reaches
its models only through `stages[name]` (`sample()`, `chat_model()`), so each trial's
configuration, the sample cache and the token accounting apply without it knowing.

An async function, and a graph's async nodes, run on the trial's event loop with every other item:
they must await (a blocking call there stalls every item; `stall.StallWatch` names the line and
fails the item). A plain function, and a graph's sync nodes, run in threads, where blocking is fine.

Checked before any spend: the module imports, the object has a usable shape and signature, the
data parses, the metrics exist, and every `stages["..."]` the pipeline's module names literally is
a declared stage (one it builds at run time is caught when it is asked for, failing its trial).
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType
from typing import Any, Literal

from pydantic import Field

from agenttts.environment.live.executor import (
    PipelineExecutor,
    PipelineSettings,
    Program,
    in_thread,
)
from agenttts.environment.live.loading import import_spec, load_items, load_object
from agenttts.environment.live.scoring import DataProgram, Scorer
from agenttts.environment.live.stages import Stages
from agenttts.environment.task import Problem, Task
from agenttts.errors import AgentTTSError, InputError


class PythonSettings(PipelineSettings):
    pipeline: str = Field(description="module:callable, or module:graph (a compiled LangGraph)")
    input: dict[str, str] | None = Field(
        default=None, description="graph only: state key -> item field (default: the item)"
    )
    output: str | None = Field(
        default=None, description="graph only: the state key holding the prediction"
    )
    check: str | None = Field(
        default=None, description="module:callable(task) -> problems, run by `task validate`"
    )


Shape = Literal["async", "sync", "graph"]


def shape_of(obj: Any, spec: str) -> Shape:
    """How to call the pipeline object; InputError when it is none of the accepted shapes."""
    if hasattr(obj, "ainvoke") and hasattr(obj, "get_graph"):
        return "graph"
    if not callable(obj):
        raise InputError(
            f"pipeline {spec!r} is a {type(obj).__name__}: give an async function "
            "`(item, stages)` or a compiled LangGraph graph"
        )
    if hasattr(obj, "compile") and hasattr(obj, "add_node"):
        raise InputError(f"pipeline {spec!r} is a StateGraph builder: give `builder.compile()`")
    try:
        inspect.signature(obj).bind(None, None)
    except TypeError:
        raise InputError(
            f"pipeline {spec!r} has the signature {inspect.signature(obj)}: a pipeline is called "
            "as pipeline(item, stages)"
        ) from None
    except ValueError:
        pass  # no introspectable signature: the first call will tell
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else obj.__call__
    return "async" if inspect.iscoroutinefunction(target) else "sync"


def stage_names_used(module: ModuleType) -> set[str]:
    """Stage names a module writes as `stages["name"]` (a static, partial view)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name | ast.Attribute)
            and (node.value.id if isinstance(node.value, ast.Name) else node.value.attr) == "stages"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            found.add(node.slice.value)
    return found


class PythonProgram(DataProgram, Program):
    def __init__(self, task: Task, settings: PythonSettings):
        super().__init__(task, settings)
        self.settings = settings
        self.obj = load_object(settings.pipeline, task.base_dir, what="pipeline")
        self.shape = shape_of(self.obj, settings.pipeline)

    async def predict(self, item: dict[str, Any], stages: Stages) -> Any:
        if self.shape == "async":
            return await self.obj(item, stages)
        if self.shape == "sync":
            return await in_thread(self.obj, item, stages)
        mapping = self.settings.input
        state_in = {k: item[v] for k, v in mapping.items()} if mapping else dict(item)
        state = await self.obj.ainvoke(state_in)
        key = self.settings.output
        if key is None:
            return state
        if key not in state:
            keys = ", ".join(map(repr, state)) if isinstance(state, dict) else type(state).__name__
            raise MissingOutput(
                f"the graph's final state has no key {key!r} (environment.settings.output); its "
                f"keys: {keys}"
            )
        return state[key]


class MissingOutput(AgentTTSError, KeyError):
    """The state key named by `output:` is not in the graph's final state."""

    def __str__(self) -> str:
        return str(self.args[0])


class PythonExecutor(PipelineExecutor):
    kind = "python"
    settings_model = PythonSettings

    @classmethod
    def check_program(cls, task: Task, settings: Any) -> list[Problem]:
        def problem(field: str, message: str) -> Problem:
            return Problem(field=f"environment.settings.{field}", message=message)

        problems: list[Problem] = []
        try:
            module, obj = import_spec(settings.pipeline, task.base_dir, what="pipeline")
            shape = shape_of(obj, settings.pipeline)
        except InputError as e:
            return [problem("pipeline", str(e))]
        if shape != "graph" and (settings.input or settings.output):
            problems.append(problem("input", "`input`/`output` apply to a LangGraph graph only"))
        undeclared = sorted(stage_names_used(module) - set(task.stage_names))
        if undeclared:
            problems.append(
                problem(
                    "pipeline",
                    f"the pipeline asks for stage(s) {undeclared}, which the task does not "
                    f"declare (declared: {', '.join(task.stage_names)})",
                )
            )
        items: list[dict[str, Any]] = []
        try:
            assert task.data.path is not None
            items = load_items(task.resolve(task.data.path))
        except InputError as e:
            problems.append(Problem(field="data.path", message=str(e)))
        if items and settings.input:
            missing = sorted({v for v in settings.input.values() if v not in items[0]})
            if missing:
                problems.append(problem("input", f"the data items have no field(s) {missing}"))
        problems.extend(
            problem("metric", p) for p in Scorer.problems(task.metrics, settings, task.base_dir)
        )
        if items and settings.gold and settings.gold not in items[0]:
            problems.append(problem("gold", f"the data items have no field {settings.gold!r}"))
        if settings.check:
            try:
                found = load_object(settings.check, task.base_dir, what="check")(task)
            except InputError as e:
                found = [str(e)]
            problems.extend(
                p if isinstance(p, Problem) else problem("check", str(p)) for p in found
            )
        return problems

    def make_program(self) -> PythonProgram:
        assert isinstance(self.live, PythonSettings)
        return PythonProgram(self.task, self.live)


RETRIEVAL_QA = "agenttts.tasks.pipelines.retrieval_qa"


class RetrievalQASettings(PythonSettings):
    """`kind: live`: the paper's retrieval -> QA pipeline unless the settings name another."""

    pipeline: str = f"{RETRIEVAL_QA}:pipeline"
    metric: str | list[str] | None = f"{RETRIEVAL_QA}:score"
    check: str | None = f"{RETRIEVAL_QA}:check"


class LiveExecutor(PythonExecutor):
    """`kind: live`, kept for task files written before `kind: python`: the bundled retrieval ->
    QA pipeline (`tasks/pipelines/retrieval_qa.py`) run as any Python pipeline is."""

    kind = "live"
    settings_model = RetrievalQASettings
