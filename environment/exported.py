"""An exported configuration: what a search chose, as a file that runs outside the search.

    agenttts_config: 1
    task: example-langgraph
    task_file: /home/me/examples/langgraph/task.yaml
    thread: my-run
    budget: 1.0                  # the budget it is the best configuration under
    main_metric: f1
    train_score: 0.5591
    test_score: 0.1667           # the thread's final evaluation (absent before it ran)
    trial: 3
    stages:
      select:
        model: smollm2           # the task's name for it; reached through deployment.models
        samples: 4
        aggregator: vote_ids
        sampling: {temperature: 0.9, top_p: 1.0, max_tokens: 16}   # the requests, as cached
        settings: {max_select: 3}                                   # the pipeline's own knobs
        prompt_tokens: 512       # nominal Np and Nd, and the cost of one query in budget units
        gen_tokens: 16
        cost: 0.0
    deployment:                  # a deployment file's entries, for these models only
      models:
        smollm2: {base_url: embedded, params: 135000000.0}
    sampler: {cache: /home/me/.agenttts/cache/samples.sqlite}

Each stage carries what its handle needs to draw and aggregate exactly as the search did (model,
S, aggregator and its settings, the answer normaliser, the request parameters the sample cache
keys on), so the file runs with no task file; `agenttts run TASK` checks it against the task and
takes the pipeline's code from there. Keys are never written: `api_key_env` names the variable.

One file is one configuration under one budget. A search over several budgets exports one file
per budget (`agenttts export THREAD --budget B`) in this same form.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from agenttts.environment.deployment import Deployment, Endpoint
from agenttts.environment.space import Config
from agenttts.environment.task import DataSpec, EnvironmentSpec, ModelChoice, Stage, Task
from agenttts.errors import InputError

if TYPE_CHECKING:
    from agenttts.environment.live.sampler import SamplerSettings

#: The exported file's format version (the `agenttts_config:` key).
FORMAT: Literal[1] = 1
#: `Endpoint` fields only `agenttts serve --print-vllm` reads: not needed to reach a server.
SERVE_ONLY = {"hf_model", "tensor_parallel_size", "port"}


class ExportedStage(BaseModel):
    """One stage at the chosen configuration."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the task's name for the model (deployment.models' key)")
    samples: int = Field(ge=1, description="S: samples drawn per prompt")
    kind: Literal["llm", "bm25", "embedding"] = "llm"
    fixed_cost: float | None = Field(default=None, ge=0, description="a non-LLM choice's cost")
    aggregator: str
    aggregator_settings: dict[str, Any] = Field(default_factory=dict)
    answer_normalizer: Literal["squad", "exact", "numeric"] = "squad"
    sampling: dict[str, Any] = Field(
        default_factory=dict, description="request parameters (the sample cache's key)"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="the stage's other settings (the pipeline's knobs)"
    )
    prompt_tokens: int = Field(gt=0, description="nominal Np of this model at this stage")
    gen_tokens: int = Field(gt=0, description="nominal Nd of this model at this stage")
    cost: float = Field(ge=0, description="nominal budget units of one query")


class ExportedConfig(BaseModel):
    """The file `agenttts export` writes and `use_config` / `agenttts run` read."""

    model_config = ConfigDict(extra="forbid")

    agenttts_config: Literal[1] = FORMAT
    task: str = Field(description="the task's name")
    task_file: str | None = Field(default=None, description="where the search read the task")
    thread: str | None = None
    budget: float = Field(gt=0)
    main_metric: str
    train_score: float | None = None
    test_score: float | None = None
    trial: int | None = None
    stages: dict[str, ExportedStage] = Field(min_length=1)
    deployment: Deployment = Field(default_factory=lambda: Deployment(models={}))
    sampler: dict[str, Any] | None = Field(
        default=None, description="the sampler's settings (live pipelines): cache, retries, ..."
    )
    _source: Path | None = PrivateAttr(default=None)

    # --- writing ---------------------------------------------------------------------------------
    @classmethod
    def of(
        cls,
        task: Task,
        config: Config,
        *,
        budget: float,
        thread: str | None = None,
        trial: int | None = None,
        train_score: float | None = None,
        test_score: float | None = None,
    ) -> ExportedConfig:
        """`config` of (resolved) `task` as a self-contained file; InputError when a base URL
        carries a password (the file holds no secrets)."""
        from agenttts.environment.live.executor import PipelineExecutor
        from agenttts.environment.live.sampler import SamplerSettings
        from agenttts.environment.live.stages import split_settings
        from agenttts.environment.registry import executor_class

        declared = Deployment.load(task.resolve(task.deployment)) if task.deployment else None
        stages: dict[str, ExportedStage] = {}
        entries: dict[str, Endpoint] = {}
        for stage in task.stages:
            chosen = config[stage.name]
            choice = stage.model(chosen.model)
            sampling, rest, _ = split_settings(stage)
            prompt_tokens, gen_tokens = stage.lengths(chosen.model)
            stages[stage.name] = ExportedStage(
                model=chosen.model,
                samples=chosen.samples,
                kind=choice.kind,
                fixed_cost=choice.fixed_cost,
                aggregator=stage.aggregator,
                aggregator_settings=stage.aggregator_settings,
                answer_normalizer=stage.answer_normalizer,
                sampling=sampling.params(stage) if sampling and choice.kind == "llm" else {},
                settings=rest,
                prompt_tokens=prompt_tokens,
                gen_tokens=gen_tokens,
                cost=stage.cost(chosen.model, chosen.samples),
            )
            for name in _models_of(stages[stage.name]):
                entry = _entry(stage.model(name), declared)
                if entry is not None:
                    entries[name] = entry
        sampler = None
        if issubclass(executor_class(task.environment.kind), PipelineExecutor):
            given = {
                k: v
                for k, v in task.environment.settings.items()
                if k in SamplerSettings.model_fields
            }
            settings = SamplerSettings.model_validate({**given, "cache_only": False})
            sampler = {
                "cache": str(Path(settings.cache).expanduser().resolve()),
                **settings.model_dump(mode="json", exclude_defaults=True, exclude={"cache"}),
            }
        return cls(
            task=task.name,
            task_file=str(Path(task.source).resolve()) if task.source != "<memory>" else None,
            thread=thread,
            budget=budget,
            main_metric=task.main_metric,
            train_score=train_score,
            test_score=test_score,
            trial=trial,
            stages=stages,
            deployment=Deployment(models=entries),
            sampler=sampler,
        )

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        data["deployment"] = {
            "models": {name: _entry_dump(entry) for name, entry in self.deployment.models.items()}
        }
        for stage in data["stages"].values():
            for key in ("aggregator_settings", "sampling", "settings"):
                if not stage[key]:
                    del stage[key]
            if stage["kind"] == "llm":
                del stage["kind"]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    # --- reading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> ExportedConfig:
        """Read and check an exported file; InputError saying what is wrong and where."""
        p = Path(path).expanduser()
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"no configuration file {p}") from None
        except IsADirectoryError:
            raise InputError(f"configuration file {p} is a folder") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the configuration file {p}: {e}") from None
        except yaml.YAMLError as e:
            raise InputError(f"configuration file {p} is not valid YAML: {e}") from None
        if not isinstance(raw, dict) or "agenttts_config" not in raw:
            raise InputError(
                f"{p} is not an exported agenttts configuration (no `agenttts_config:` key; "
                "write one with `agenttts export THREAD --out FILE`)"
            )
        try:
            exported = cls.model_validate(raw)
        except ValidationError as e:
            where = "; ".join(
                f"{'.'.join(map(str, x['loc'])) or '<root>'}: {x['msg']}" for x in e.errors()
            )
            raise InputError(f"configuration file {p}: {where}") from None
        exported._source = p.resolve()
        try:
            exported.sampler_settings()
        except ValidationError as e:
            where = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise InputError(f"configuration file {p}: sampler.{where}") from None
        return exported

    def check_reachable(self) -> None:
        """InputError unless every LLM the stages run has a deployment entry (where to reach
        it): a configuration of a replayed or simulated task has none."""
        for name, stage in self.stages.items():
            for model in _models_of(stage):
                if stage.kind == "llm" and model not in self.deployment.models:
                    raise InputError(
                        f"configuration file {self._source or ''}: stage {name!r} runs model "
                        f"{model!r}, which has no entry under deployment.models (where to reach "
                        "it; a replayed or simulated task's models have none)"
                    )

    @property
    def base_dir(self) -> Path:
        """Where relative paths in stage settings resolve: the searched task's folder."""
        if self.task_file:
            return Path(self.task_file).parent
        return self._source.parent if self._source else Path.cwd()

    def sampler_settings(self) -> SamplerSettings:
        """How the stages draw: the search's sample cache, retries and request batching."""
        from agenttts.environment.live.sampler import SamplerSettings

        return SamplerSettings.model_validate(self.sampler or {})

    def config(self) -> Config:
        return Config.of({name: (s.model, s.samples) for name, s in self.stages.items()})

    def stage_task(self) -> Task:
        """A task of these stages only, at this configuration: what the stage handles read."""
        task = Task(
            name=self.task,
            budget=self.budget,
            stages=self._stages(),
            metrics=[self.main_metric],
            main_metric=self.main_metric,
            data=DataSpec(),
            environment=EnvironmentSpec(kind="python", settings={}),
        )
        task.set_origin(str(self._source or "<memory>"), self.base_dir)
        return task

    def apply_to(self, task: Task) -> Task:
        """`task` (whose pipeline will run) with these stages as searched; InputError when the
        file is another task's configuration or names a stage or model the task does not."""
        where = f"the configuration ({self._source or 'given'})"
        if self.task != task.name:
            raise InputError(
                f"{where} is for task {self.task!r}, not {task.name!r}: export it from a thread "
                f"of {task.name!r}"
            )
        if set(self.stages) != set(task.stage_names):
            raise InputError(
                f"{where} has stages {', '.join(self.stages)}; task {task.name!r} declares "
                f"{', '.join(task.stage_names)}"
            )
        for name, stage in self.stages.items():
            known = task.stage(name).model_names
            for model in _models_of(stage):
                if model not in known:
                    raise InputError(
                        f"{where}: stage {name!r} runs model {model!r}, unknown to task "
                        f"{task.name!r} (its models there: {', '.join(known)})"
                    )
        return task.model_copy(update={"stages": self._stages(), "deployment": None})

    def _stages(self) -> list[Stage]:
        def choice(name: str, stage: ExportedStage) -> ModelChoice:
            entry = self.deployment.models.get(name)
            own = name == stage.model
            return ModelChoice(
                name=name,
                params=entry.params if entry else None,
                endpoint=entry.base_url if entry else None,
                kind=stage.kind if own else "llm",
                fixed_cost=stage.fixed_cost if own else None,
            )

        return [
            Stage(
                name=name,
                models=[choice(m, s) for m in _models_of(s)],
                prompt_tokens=s.prompt_tokens,
                gen_tokens=s.gen_tokens,
                max_samples=s.samples,
                aggregator=s.aggregator,
                aggregator_settings=s.aggregator_settings,
                answer_normalizer=s.answer_normalizer,
                settings={**s.sampling, **s.settings},
            )
            for name, s in self.stages.items()
        ]


def _models_of(stage: ExportedStage) -> list[str]:
    """The stage's model, and its LLM fuser where that is another model."""
    fuser = stage.aggregator_settings.get("model") if stage.aggregator == "fuse" else None
    return [stage.model] + ([str(fuser)] if fuser and fuser != stage.model else [])


def _entry(choice: ModelChoice, declared: Deployment | None) -> Endpoint | None:
    """The deployment entry that reaches `choice` as the search did: the task's deployment
    file's, else one made from the task's own `endpoint:`; None for a choice with no endpoint."""
    if choice.kind != "llm" or not choice.endpoint or choice.params is None:
        return None
    entry = declared.models.get(choice.name) if declared else None
    if entry is None:
        entry = Endpoint(base_url=choice.endpoint, params=choice.params)
    elif choice.endpoint != entry.base_url:  # the task names another server than the file
        entry = entry.model_copy(
            update={"base_url": choice.endpoint, "base_urls": [choice.endpoint]}
        )
    for url in entry.base_urls:
        if urlsplit(url).password:
            raise InputError(
                f"the base URL of model {choice.name!r} holds a password; an exported file holds "
                "no secrets: give the key through the deployment entry's api_key_env"
            )
    return entry


def _entry_dump(entry: Endpoint) -> dict[str, Any]:
    """A deployment entry as a deployment file writes it: one URL form, set fields only."""
    urls: dict[str, Any] = (
        {"base_urls": entry.base_urls} if len(entry.base_urls) > 1 else {"base_url": entry.base_url}
    )
    rest = entry.model_dump(
        mode="json",
        exclude_defaults=True,
        exclude={"base_url", "base_urls", "params", *SERVE_ONLY},
    )
    return {**urls, "params": entry.params, **rest}
