"""The stage handles a user's pipeline gets: one per declared stage, configured by the trial.

For one trial, `Stages` maps each stage name to a `StageHandle` that knows the stage's model and
sample count in this configuration. `await handle.sample(messages)` draws the S samples through
the executor's `Sampler` (the sample cache, endpoint routing, concurrency limits, retries) and adds
their tokens to the stage's tally, so the trial's measured cost is whatever the pipeline really
drew; `handle.aggregate(answers)` applies the stage's declared aggregator; `handle.chat_model()` is
the same as a LangChain chat model.

A pipeline module can also take `stages` from `agenttts.pipeline` at import time (a LangGraph graph
built once, with `stages["qa"].chat_model()` where it had `ChatOpenAI(...)`): such handles are
unbound and resolve the trial that runs the current item through a context variable, which asyncio
tasks and LangChain's executor threads both inherit. Outside any trial they resolve the exported
configuration the process runs at (`environment/live/configured.py`: `use_config` or
`AGENTTTS_CONFIG`), whose draws run on a loop of its own: a draw made on another event loop is
handed to the run's loop, so the caller's loops (one `asyncio.run` after another) never matter.

Failures that are not the item's fault (an endpoint failing for good, a sample missing in a
cache-only replay, a stage the task does not declare) are noted on the trial as `fatal`, so the
runner fails the whole trial even when user code catches the exception. A request that failed
while its endpoint answers others (`RequestFailed`: a prompt the server chokes on) is the item's
own: it is noted on the item (`ItemClock.failure`), which fails even if its code caught it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agenttts.environment.budget import TokenUsage
from agenttts.environment.live import aggregators
from agenttts.environment.live.cache import Sample
from agenttts.environment.live.client import RequestFailed
from agenttts.environment.live.sampler import Drawn, Messages, Sampler
from agenttts.environment.metrics import NORMALIZERS
from agenttts.environment.space import Config, StageConfig
from agenttts.environment.task import INT_MAX, ModelChoice, Problem, Stage, Task
from agenttts.environment.user_files import validation_problems
from agenttts.errors import ResumableStop, TrialError

if TYPE_CHECKING:
    from agenttts.environment.live.chat_model import StageChatModel

T = TypeVar("T")


class Sampling(BaseModel):
    """A stage's default sampling parameters (the sampling keys of its `settings:` block)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.9, ge=0, description="the paper samples at 0.9")
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, description="default: the stage gen_tokens")
    seed: int | None = Field(
        default=None,
        ge=0,
        le=INT_MAX,
        description="sample i is drawn with seed+i (one request per sample)",
    )

    def params(self, stage: Stage) -> dict[str, Any]:
        """The request parameters, exactly as the cache keys them."""
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens or stage.gen_tokens,
        }
        if self.seed is not None:
            params["seed"] = self.seed
        return params


SAMPLING_KEYS = frozenset(Sampling.model_fields)


def split_settings(stage: Stage) -> tuple[Sampling | None, dict[str, Any], list[Problem]]:
    """A stage's `settings:` as its sampling defaults and the rest (the pipeline's business)."""
    from pydantic import ValidationError

    given = {k: v for k, v in stage.settings.items() if k in SAMPLING_KEYS}
    rest = {k: v for k, v in stage.settings.items() if k not in SAMPLING_KEYS}
    try:
        return Sampling.model_validate(given, strict=True), rest, []
    except ValidationError as e:
        return (
            None,
            rest,
            [
                Problem(field=f"stages[{stage.name}].settings.{field}", message=message)
                for field, message in validation_problems(e, given)
            ],
        )


class UndeclaredStage(TrialError, KeyError):
    """The pipeline asked for a stage the task does not declare: the trial fails."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "undeclared stage"


class StageUnavailable(TrialError):
    """`sample()` on a stage whose configured choice is not an LLM, or outside any trial."""


_CURRENT: ContextVar[TrialRun | None] = ContextVar("agenttts_trial", default=None)


class ItemClock:
    """One item's own time: its pipeline's code, not its waits for samples. A wait has its own
    bounds (the request timeout, retries, the circuit breaker), and a long queue for a slow or
    busy endpoint is not a hang, so only the rest counts against the item's timeout. Also the
    first of its requests that failed for good (`failure`), which fails the item."""

    def __init__(self) -> None:
        self.failure: RequestFailed | None = None
        self.start = time.monotonic()
        self.waits = 0  # draws in flight (an item may draw several stages at once)
        self.waited = 0.0
        self._since = 0.0

    @contextmanager
    def waiting(self) -> Iterator[None]:
        if self.waits == 0:
            self._since = time.monotonic()
        self.waits += 1
        try:
            yield
        finally:
            self.waits -= 1
            if self.waits == 0:
                self.waited += time.monotonic() - self._since

    def own_seconds(self) -> float:
        now = time.monotonic()
        return now - self.start - self.waited - (now - self._since if self.waits else 0.0)


#: The item running in this context (set per item by the executor; absent outside a trial).
ITEM_CLOCK: ContextVar[ItemClock | None] = ContextVar("agenttts_item_clock", default=None)
#: Where the item's draws are written down (stage -> [{samples, output}], as `TrialRun.outputs`),
#: when the caller asked for each item's record (`record_items`); None otherwise.
ITEM_OUTPUTS: ContextVar[dict[str, list[dict[str, Any]]] | None] = ContextVar(
    "agenttts_item_outputs", default=None
)


def current_run() -> TrialRun:
    """The trial running the current item; outside a search, the exported configuration the
    process was given."""
    run = _CURRENT.get()
    if run is not None:
        return run
    from agenttts.environment.live.configured import CONFIG_ENV, installed_run

    run = installed_run()
    if run is None:
        raise StageUnavailable(
            "no configuration to run the stages at: inside a search, stage handles follow the "
            "trial being run; outside one, give the process an exported configuration (written by "
            "`agenttts export THREAD --out best.yaml`), either with "
            '`agenttts.pipeline.use_config("best.yaml")` or with the environment variable '
            f"{CONFIG_ENV}=best.yaml"
        )
    return run


class TrialRun:
    """One trial in progress: its configuration, the shared sampler, and its token tallies.

    `loop`: where the sampler's draws run (default: the running loop). `record`: keep each
    draw's sample texts and the stage aggregate that followed (`outputs`), as `agenttts run`
    reports them; a search keeps only the tallies."""

    def __init__(
        self,
        task: Task,
        config: Config,
        sampler: Sampler,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        record: bool = False,
    ):
        self.task = task
        self.config = config
        self.sampler = sampler
        self.loop = loop or asyncio.get_running_loop()
        self.record = record
        self.outputs: dict[str, list[dict[str, Any]]] = {}
        self.tallies: dict[str, TokenUsage] = {}
        self.fatal: BaseException | None = None
        self.stages = Stages(self)
        self.sampling: dict[str, Sampling] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        for stage in task.stages:
            sampling, rest, _ = split_settings(stage)
            self.sampling[stage.name] = sampling or Sampling()
            self.extra[stage.name] = rest

    def enter(self) -> None:
        """Make this trial the one that unbound handles resolve (for the current task)."""
        _CURRENT.set(self)

    def fail(self, error: BaseException) -> None:
        if self.fatal is None:
            self.fatal = error

    def tally(self, key: str) -> TokenUsage:
        return self.tallies.setdefault(key, TokenUsage())

    def _written_to(self) -> dict[str, list[dict[str, Any]]] | None:
        """Where draws are written down: the running item's record (`ITEM_OUTPUTS`: a trial that
        keeps each item's), else this run's own when it records (`agenttts run`), else nowhere."""
        item = ITEM_OUTPUTS.get()
        if item is not None:
            return item
        return self.outputs if self.record else None

    def note_draw(self, key: str, samples: Sequence[Sample]) -> None:
        outputs = self._written_to()
        if outputs is not None:
            outputs.setdefault(key, []).append({"samples": [s.text for s in samples]})

    def note_output(self, key: str, value: Any) -> None:
        """The aggregate of the stage's latest draw that has none yet (a stage's code draws,
        then aggregates)."""
        outputs = self._written_to()
        if outputs is not None:
            for call in reversed(outputs.get(key, [])):
                if "output" not in call:
                    call["output"] = value
                    return

    async def on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` run on this run's loop (the sampler's clients and locks belong to it)."""
        if asyncio.get_running_loop() is self.loop:
            return await work
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    def stage(self, name: str) -> Stage:
        for s in self.task.stages:
            if s.name == name:
                return s
        error = UndeclaredStage(
            f"the pipeline asked for stage {name!r}, which the task does not declare "
            f"(declared: {', '.join(self.task.stage_names)})"
        )
        self.fail(error)
        raise error


class StageHandle:
    """One stage in one trial (bound), or a name resolved per item from the running trial."""

    def __init__(self, name: str, run: TrialRun | None = None):
        self.name = name
        self._run = run

    def __repr__(self) -> str:
        try:
            return f"StageHandle({self.name!r}, model={self.model!r}, samples={self.samples})"
        except StageUnavailable:
            return f"StageHandle({self.name!r}, unbound)"

    # --- what this trial configured ------------------------------------------------------------
    @property
    def run(self) -> TrialRun:
        return self._run if self._run is not None else current_run()

    @property
    def stage(self) -> Stage:
        """The stage as the task declares it (models, nominal lengths, aggregator, settings)."""
        return self.run.stage(self.name)

    @property
    def config(self) -> StageConfig:
        self.stage  # noqa: B018 - an undeclared name fails here, clearly
        return self.run.config[self.name]

    @property
    def model(self) -> str:
        """The model this trial runs at this stage (the task's name for it)."""
        return self.config.model

    @property
    def samples(self) -> int:
        """S: how many samples this trial draws per prompt at this stage."""
        return self.config.samples

    @property
    def choice(self) -> ModelChoice:
        return self.stage.model(self.model)

    @property
    def kind(self) -> str:
        """`llm`, or the non-LLM choice's kind (`bm25`, `embedding`) the pipeline runs itself."""
        return self.choice.kind

    @property
    def is_llm(self) -> bool:
        return self.kind == "llm"

    @property
    def aggregator(self) -> str:
        return self.stage.aggregator

    @property
    def settings(self) -> dict[str, Any]:
        """The stage's `settings:` other than sampling: the pipeline's own knobs."""
        self.stage  # noqa: B018
        return dict(self.run.extra[self.name])

    @property
    def sampling(self) -> dict[str, Any]:
        """Default request parameters of this stage (temperature, top_p, max_tokens, seed)."""
        return self.run.sampling[self.name].params(self.stage)

    # --- drawing ---------------------------------------------------------------------------------
    async def sample(self, messages: Any, **sampling: Any) -> list[Sample]:
        """Draw this trial's S samples of a prompt (chat messages, LangChain messages or a str).

        Keyword arguments override the stage's sampling defaults for this prompt (`seed=None`
        removes a seed); they are part of the cache key.
        """
        drawn = await self.draw(messages, self.samples, **sampling)
        return drawn.samples

    async def draw(
        self,
        messages: Any,
        count: int,
        *,
        model: str | None = None,
        tally: str | None = None,
        **sampling: Any,
    ) -> Drawn:
        """`count` samples with their token counts; `model` (another of the stage's models) and
        `tally` are for an aggregator's own calls, such as the LLM fuser."""
        run = self.run
        stage = self.stage
        choice = stage.model(model) if model else self.choice
        if choice.kind != "llm":
            raise StageUnavailable(
                f"stage {self.name!r} runs {choice.name!r} ({choice.kind}, not an LLM) in this "
                f"trial: check `stages[{self.name!r}].is_llm` and run it in the pipeline"
            )
        params = self._params(stage, sampling)
        key = tally or self.name
        clock = ITEM_CLOCK.get()
        try:
            with clock.waiting() if clock is not None else nullcontext():
                drawn = await run.on_loop(
                    run.sampler.draw(
                        self.name, choice, to_messages(messages), count, params, run.tally(key)
                    )
                )
        except RequestFailed as e:
            if clock is not None and clock.failure is None:
                clock.failure = e
            raise
        except (TrialError, ResumableStop) as e:
            run.fail(e)
            raise
        run.note_draw(key, drawn.samples)
        return drawn

    def _params(self, stage: Stage, overrides: Mapping[str, Any]) -> dict[str, Any]:
        params = self.run.sampling[self.name].params(stage)
        known = {k: v for k, v in overrides.items() if k in SAMPLING_KEYS and v is not None}
        if known:
            checked = Sampling.model_validate(
                {**self.run.sampling[self.name].model_dump(), **known}
            )
            params.update({k: v for k, v in checked.params(stage).items() if k in known})
        for k, v in overrides.items():
            if v is None:
                params.pop(k, None)
            elif k not in SAMPLING_KEYS:
                params[k] = v
        return params

    async def aggregate(self, answers: Sequence[Any], *, question: str = "") -> Any:
        """The stage's declared aggregator over parsed answers (`fuse` calls its LLM)."""
        name = self.aggregator
        value: Any
        if name == "fuse":
            value = await aggregators.fuse(self, answers, question=question)
        elif name == "vote_ids":
            value = aggregators.vote_ids(answers)
        elif name == "first":
            value = aggregators.first(answers)
        else:
            value = aggregators.vote(answers, NORMALIZERS[self.stage.answer_normalizer])
        self.run.note_output(self.name, value)
        return value

    def chat_model(
        self,
        *,
        parse: Callable[[str], Any] | None = None,
        aggregate: Callable[[list[Any]], Any] | None = None,
        **sampling: Any,
    ) -> StageChatModel:
        """A LangChain chat model for this stage: `invoke`/`ainvoke` draw the S samples and
        answer with the stage's aggregate of `parse(text)` as one `AIMessage`."""
        from agenttts.environment.live.chat_model import StageChatModel

        return StageChatModel.for_handle(self, parse=parse, aggregate=aggregate, **sampling)


class Stages(Mapping[str, StageHandle]):
    """Every stage of the running trial by name; `stages["qa"]` on an undeclared name fails the
    trial with a clear error. Unbound (`agenttts.pipeline.stages`): resolved per item."""

    def __init__(self, run: TrialRun | None = None):
        self._run = run

    @property
    def run(self) -> TrialRun:
        return self._run if self._run is not None else current_run()

    def __getitem__(self, name: str) -> StageHandle:
        if self._run is not None:
            self._run.stage(name)  # raises UndeclaredStage, and fails the trial
        return StageHandle(name, self._run)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.run.task.stage_names

    def __iter__(self) -> Iterator[str]:
        return iter(self.run.task.stage_names)

    def __len__(self) -> int:
        return len(self.run.task.stages)

    @property
    def config(self) -> Config:
        """This trial's configuration: {stage: (model, samples)}."""
        return self.run.config

    @property
    def task(self) -> Task:
        """The task being searched (its folder resolves files shipped beside it)."""
        return self.run.task

    def usage(self) -> dict[str, dict[str, int]]:
        """What the stages drew in this run (a trial; outside a search, the process so far): per
        stage (and fuser), prompts, samples, samples the cache held, requests, tokens."""
        return {key: asdict(t) for key, t in self.run.tallies.items()}


def to_messages(messages: Any) -> Messages:
    """OpenAI chat messages from a str, dicts or LangChain messages (the cache key's form)."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    items = list(messages)
    if all(isinstance(m, Mapping) for m in items):
        return [dict(m) for m in items]
    from langchain_core.messages import convert_to_openai_messages

    converted = convert_to_openai_messages(items)
    return [dict(m) for m in (converted if isinstance(converted, list) else [converted])]
