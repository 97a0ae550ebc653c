"""The run's settings: passed as LangGraph runtime context, so Studio shows and edits them.

Settings are not part of the graph state on purpose: they say *how* to search, the state says what
was found. The runner records them in the state once (``settings``) so a resumed run can be held to
the settings it started with.

`Context` is a pydantic model, and each setting is declared on it once with `setting()`: its type,
default, bounds (`Field(ge=, gt=, le=, lt=)`) and description, plus what only the command line and
the search need (`Setting`: whether it defines the search, its old flag spellings, ...). The agent's
settings come from their one declaration, `agenttts.llm.AgentEndpoint` (`agent_setting`).
Everything else is derived from these fields: `SEARCH_DEFINING`, the flags of `agenttts search`,
`bench` and `demo` (`agenttts.cli.settings`), the agent endpoint of the LLM proposers
(`agent_endpoint`), Studio's context panel (LangGraph renders `Context.model_json_schema()`:
descriptions, defaults, bounds, the insights' choices), the checks (`problems`: pydantic's strict
validation, every number finite, of its type and in its range, an integer within the 64 bits a
checkpoint stores), and the environment fallbacks (`AGENTTTS_<FIELD>`, read by pydantic's parsing
of strings, as LangGraph's react-agent template falls back to the environment).

Making a `Context` never raises for a bad value: LangGraph builds the context of a Studio or HTTP
run with `Context(**dict)` before anything is checkpointed, and a refusal there would lose the
run's input and speak pydantic's language. The value is held as given, and the first node refuses
it (`nodes.common.settings`) with the message the CLI prints (`validate`).
"""

from __future__ import annotations

import copy
import os
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agenttts.environment.task import INT_MAX
from agenttts.errors import InputError
from agenttts.llm import AgentEndpoint
from agenttts.prompting import INSIGHTS
from agenttts.urls import lost_password, masked

if TYPE_CHECKING:
    from agenttts.proposers.base import ProposerSettings

#: Environment variables `AGENTTTS_<FIELD>` fill the settings a run is not given.
ENV_PREFIX = "AGENTTTS_"


@dataclass(frozen=True)
class Setting:
    """What a setting's declaration says beyond pydantic's field: `defines_search` (a resumed run
    must keep it); for the command line, `off` (the flag value that means None: patience 0),
    `path` (expand `~`), `metavar`, `aliases` (older flag spellings), `choices` (a list's items);
    `describe` (a description computed when read, by Studio's schema or `--help`: the proposer
    list comes from the registry, which this module must not import at import time); `range` (the
    message for a value out of bounds, where the bounds alone say too little)."""

    defines_search: bool = False
    off: Any = None
    path: bool = False
    metavar: str | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple[Any, ...] | None = None
    describe: Callable[[], str] | None = None
    range: str | None = None


def setting(
    default: Any = PydanticUndefined,
    *,
    description: str | Callable[[], str],
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    check: Callable[[Any, ValidationInfo], Any] | None = None,
    declared: FieldInfo | None = None,
    **flags: Any,
) -> Any:
    """One run setting: a pydantic field with its bounds (None: unbounded) and its `Setting`
    (`flags`). `check(value, info)` raises ValueError naming what is wrong (run after the type
    and bounds pass); `declared`: the field this one repeats (an `AgentEndpoint` field), whose
    bounds it keeps."""
    lazy = description if callable(description) else None
    bounds = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt}.items() if v is not None}
    field: dict[str, Any] = {
        "description": None if lazy else str(description),
        "json_schema_extra": _shown_in_studio(lazy, flags.get("choices")),
        **bounds,
    }
    if default_factory is not None:
        field["default_factory"] = default_factory
    else:
        field["default"] = default
    info: FieldInfo = Field(**field)
    if declared is not None:  # its bounds, but those this setting tightens
        kept = [m for m in declared.metadata if type(m).__name__.lower() not in bounds]
        info.metadata[:0] = kept
    info.metadata.append(Setting(describe=lazy, **flags))
    if flags.get("choices") is not None:
        info.metadata.append(AfterValidator(_items_among(flags["choices"])))
    if check is not None:
        info.metadata.append(AfterValidator(check))
    return info


def agent_setting(name: str, **extra: Any) -> Any:
    """The run setting `agent_<name>`: the agent endpoint's field as `AgentEndpoint` declares it
    (default, bounds, description), with what only the settings add (tighter bounds, flags)."""
    declared = AgentEndpoint.model_fields[name]
    assert declared.description is not None
    return setting(declared.default, description=declared.description, declared=declared, **extra)


def _shown_in_studio(
    describe: Callable[[], str] | None, choices: tuple[Any, ...] | None
) -> Callable[[dict[str, Any]], None] | None:
    """What Studio's schema adds to pydantic's: a description computed when the schema is asked
    for, and a list's allowed items (a choice of values, not any number)."""
    if describe is None and choices is None:
        return None

    def fill(schema: dict[str, Any]) -> None:
        if describe is not None:
            schema["description"] = describe()
        if choices is not None:
            schema.setdefault("items", {})["enum"] = list(choices)

    return fill


def _proposer_description() -> str:
    from agenttts.proposers import PROPOSERS

    return (
        f"Search method by name: {', '.join(PROPOSERS)} (agenttts is the LLM agent, insight the "
        "three insights as code); NAME-noN switches insight N off (e.g. insight-no2)."
    )


def _known_proposer(value: str, info: ValidationInfo) -> str:
    from agenttts.proposers import PROPOSERS, split_variant

    if split_variant(value)[0] not in PROPOSERS:
        raise ValueError(f"unknown {info.field_name} {value!r} (known: {', '.join(PROPOSERS)})")
    return value


def _items_among(choices: tuple[Any, ...]) -> Callable[[list[Any], ValidationInfo], list[Any]]:
    def check(value: list[Any], info: ValidationInfo) -> list[Any]:
        bad = [v for v in value if v not in choices]
        if bad:
            allowed = ", ".join(map(str, choices))
            raise ValueError(f"{info.field_name} may hold only {allowed} (got {bad})")
        return value

    return check


def _positive_items(value: list[float], info: ValidationInfo) -> list[float]:
    bad = [v for v in value if v <= 0]
    if bad:
        raise ValueError(f"{info.field_name} must all be positive (got {bad})")
    return value


def _password_kept(value: str, info: ValidationInfo) -> str:
    """A URL that can connect: not one a thread recorded, whose password was masked."""
    if lost_password(value):
        raise ValueError(
            f"{info.field_name} {value}: a thread records no password (agenttts never stores "
            "one), so give the URL with it again (--agent-base-url)"
        )
    return value


def _writable_folder(value: str, info: ValidationInfo) -> str:
    """A folder that can be made (or is there) and written: the report is written after the
    whole search, too late to find out."""
    folder = Path(value).expanduser()
    there = folder
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        what = "a file" if there.is_file() else "not a folder"
        raise ValueError(f"{info.field_name} {folder} cannot be made: {there} is {what}")
    if not os.access(there, os.W_OK | os.X_OK):
        raise ValueError(f"{info.field_name} {folder} cannot be written: {there} is not writable")
    return value


def _prompt_folder(value: str | None, info: ValidationInfo) -> str | None:
    """A prompts folder agenttts can use as is (misspelled files, unknown placeholders, ...)."""
    from agenttts.prompting import check_prompts_dir

    problems = check_prompts_dir(value) if value else []
    if problems:
        raise ValueError(f"{info.field_name}: " + "; ".join(problems))
    return value


class Context(BaseModel):
    """How one search runs. Every field shows up, with its description, in LangGraph Studio."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")

    proposer: str = setting(
        "agenttts",
        description=_proposer_description,
        check=_known_proposer,
        defines_search=True,
    )
    budgets: list[float] = setting(
        default_factory=list,
        description="Several budgets searched in one thread, sharing its trials and samples (a "
        "frontier search, see agenttts/frontier.py): the best configuration per budget and the "
        "Pareto front of cost against the main metric; empty: the task's budgets, else its "
        "budget.",
        check=_positive_items,
        defines_search=True,
        metavar="B",
    )
    agent_model: str = agent_setting("model", defines_search=True)
    agent_base_url: str = agent_setting("base_url", check=_password_kept)
    agent_api_key_env: str | None = agent_setting(
        "api_key_env", metavar="NAME", aliases=("--agent-key-env",)
    )
    agent_temperature: float = agent_setting(
        "temperature", defines_search=True, aliases=("--temperature",)
    )
    agent_timeout_s: float | None = agent_setting(
        "timeout_s", metavar="S", aliases=("--agent-timeout",), off=0
    )
    agent_max_tokens: int = agent_setting("max_tokens", ge=16, le=INT_MAX, metavar="N")
    agent_params: float | None = agent_setting("params", metavar="N")
    agent_cache: str | None = agent_setting("cache", path=True, metavar="FILE")
    batch_size: int = setting(
        10,
        description="Configurations proposed per iteration.",
        ge=1,
        le=INT_MAX,
        defines_search=True,
    )
    max_iterations: int = setting(
        10,
        description="Stop after this many search iterations (several budgets: this many "
        "targeting each).",
        ge=1,
        le=INT_MAX,
    )
    max_trials: int | None = setting(
        None,
        description="Stop once this many trials were executed (initial trials included); empty: "
        "no cap.",
        ge=1,
        le=INT_MAX,
    )
    patience: int | None = setting(
        4,
        description="Stop after this many iterations in a row without a better score; empty: off.",
        ge=1,
        le=INT_MAX,
        off=0,
    )
    target: float | None = setting(
        None, description="Stop as soon as the main metric reaches this score; empty: off."
    )
    no_insights: list[int] = setting(
        default_factory=list,
        description="Ablation: insights switched off (1 model preference, 2 per-stage sample "
        "optimum, 3 budget trade-offs between stages). Switching 1 off skips the initialisation.",
        choices=INSIGHTS,
        defines_search=True,
        metavar="N",
        aliases=("--no-insight",),
    )
    prompts_dir: str | None = setting(
        None,
        description="Folder whose prompt files override the shipped ones (read at each node run).",
        check=_prompt_folder,
        path=True,
        metavar="DIR",
        aliases=("--prompts",),
    )
    seed: int = setting(
        0,
        description="Seed of the proposer (a resumed run proposes the same).",
        ge=-INT_MAX - 1,
        le=INT_MAX,
        defines_search=True,
    )
    hybrid_agent: bool = setting(
        True,
        description="The LLM proposers (those that ask an agent) never waste a batch: a "
        "proposal over the budget is repaired to the nearest feasible configuration, slots the "
        "agent leaves empty are topped up by the insight proposer (each trial's rationale says "
        "which), and the agent's prompt carries the insight proposer's fitted numbers. Off: the "
        "paper's agent exactly.",
        defines_search=True,
    )
    racing: float | None = setting(
        None,
        description="Racing on training items: a new configuration first runs on this share of "
        "the training items (e.g. 0.25) and earns more, rung by rung up to the full split, only "
        "while it can still tie or beat the incumbent (a paired confidence bound, see "
        "agenttts/racing.py); empty: off, every trial runs on the whole split. Needs per-item "
        "results (every executor but the grid replay).",
        gt=0,
        lt=1,
        range="a share of the training items between 0 and 1, e.g. 0.25",
        defines_search=True,
        metavar="SHARE",
    )
    free_evaluations: bool = setting(
        True,
        description="Once a trial has run, every configuration its samples already answer "
        "(fewer samples on the last stage; live: on any stage whose aggregate stays the same) is "
        "scored at no cost and archived as derived from it, see agenttts/derived.py; the insight "
        "proposer then also samples progressively (a stage's samples grow a doubling at a time, "
        "only while they can still help). Off: the paper's search exactly.",
        defines_search=True,
    )
    report_dir: str = setting(
        ".agenttts/reports",
        description="Where the final report (JSON, Markdown, PNG) goes, one folder per thread.",
        check=_writable_folder,
        path=True,
    )

    def __init__(self, **given: Any) -> None:
        """The settings as given (keys that are no setting are ignored), each setting not given
        from `$AGENTTTS_<FIELD>` when that is set, else its default. Nothing is checked here but
        the environment's text (see the module docstring): `validate` checks."""
        super().__init__()
        names = type(self).model_fields
        for name, value in {**_from_environment(given), **given}.items():
            if name in names:
                setattr(self, name, value)

    def problems(self) -> list[str]:
        """What makes these settings unusable, every problem at once, before anything is spent:
        one message per setting, in declaration order."""
        try:
            _checked().model_validate(self.to_dict())
        except ValidationError as e:
            return _messages(e, self.to_dict())
        return []

    def validate(self) -> Context:  # type: ignore[override]  # pydantic's deprecated classmethod
        """These settings, or InputError naming every problem (the text the CLI prints too)."""
        problems = self.problems()
        if problems:
            raise InputError("; ".join(problems))
        return self

    def agent_endpoint(self, **overrides: Any) -> AgentEndpoint:
        """The LLM proposers' agent: every `agent_*` setting, named without the prefix; `overrides`
        set endpoint fields that are no run setting (`max_parse_retries`) or replace one."""
        agent = {
            name.removeprefix("agent_"): value for name, value in self if name.startswith("agent_")
        }
        return AgentEndpoint(**{**agent, **overrides})

    def proposer_settings(self) -> ProposerSettings:
        from agenttts.proposers.base import ProposerSettings

        return ProposerSettings(
            seed=self.seed,
            no_insights=frozenset(self.no_insights),
            prompts_dir=Path(self.prompts_dir).expanduser() if self.prompts_dir else None,
            agent=self.agent_endpoint(),
            hybrid=self.hybrid_agent,
            progressive=self.free_evaluations,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain, the values as held (copied: never sharing a list with these settings)."""
        return copy.deepcopy(dict(self))

    def record(self) -> dict[str, Any]:
        """What a thread records of the settings it started with (the state's `settings`, and so
        the report): `to_dict` with no password in the agent's URL (`urls.masked`)."""
        return {**self.to_dict(), "agent_base_url": masked(self.agent_base_url)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Context:
        """Settings from a mapping (keys that are no setting are ignored), held as given: the
        environment fills only the settings `raw` lacks, so a resumed run's record is kept."""
        return cls(**{name: raw[name] for name in cls.model_fields if name in raw})


def declared() -> Iterator[tuple[str, FieldInfo, Setting]]:
    """Every setting in declaration order: its name, pydantic field and `Setting`."""
    for name, info in Context.model_fields.items():
        yield name, info, flags_of(info)


def flags_of(info: FieldInfo) -> Setting:
    return next(m for m in info.metadata if isinstance(m, Setting))


def description_of(name: str) -> str:
    """A setting's description as Studio and `--help` show it (a computed one computed now)."""
    info = Context.model_fields[name]
    describe = flags_of(info).describe
    return describe() if describe is not None else str(info.description)


def default_of(name: str) -> Any:
    """A setting's declared default (a fresh one for a default factory)."""
    return Context.model_fields[name].get_default(call_default_factory=True)


def base_type(name: str) -> Any:
    """A setting's type without its None: `int` for `int | None`, `list[int]` for itself."""
    return _optional(Context.model_fields[name].annotation)[0]


def _optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (tp, False)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(get_args(tp))
    return tp, False


@cache
def _checked() -> type[BaseModel]:
    """`Context`'s fields as a plain pydantic model: what `problems` validates with (strictly:
    no text read as a number, no bool as a number, an int is a float)."""
    fields: dict[str, Any] = {n: (i.annotation, i) for n, i in Context.model_fields.items()}
    return create_model("Context", __config__=Context.model_config, **fields)


def _messages(error: ValidationError, values: Mapping[str, Any]) -> list[str]:
    """One message per setting pydantic refused, in the words the CLI has always used."""
    out: dict[str, str] = {}
    for e in error.errors():
        name = str(e["loc"][0])
        if name not in out:
            out[name] = _message(name, e, values.get(name))
    return list(out.values())


def _message(name: str, e: Any, value: Any) -> str:
    kind, ctx = e["type"], e.get("ctx") or {}
    if kind == "value_error":  # a setting's own check: its message as written
        return str(ctx.get("error", e["msg"]))
    if kind == "finite_number":
        return f"{name} must be a finite number (got {value!r})"
    span = flags_of(Context.model_fields[name]).range
    if span is not None and kind in _BOUNDS:
        return f"{name} must be {span}"
    if kind == "greater_than_equal":
        return f"{name} must be at least {_number(ctx['ge'])}"
    if kind == "greater_than":
        gt = ctx["gt"]
        return f"{name} must be positive" if gt == 0 else f"{name} must exceed {_number(gt)}"
    if kind == "less_than_equal":
        return f"{name} must be at most {_number(ctx['le'])}"
    if kind == "less_than":
        return f"{name} must be below {_number(ctx['lt'])}"
    declared = _type_name(Context.model_fields[name].annotation)
    return f"{name} must be of type {declared} (got {value!r})"


_BOUNDS = {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) and not get_args(tp) else str(tp)


def _from_environment(given: Mapping[str, Any]) -> dict[str, Any]:
    """`$AGENTTTS_<FIELD>` for every setting not `given`, read as its type by pydantic's parsing
    of strings (lists comma-separated, an empty optional None, yes/no/on/off/1/0 for a bool);
    InputError naming the variable when its text is no such value."""
    out: dict[str, Any] = {}
    for name, info in Context.model_fields.items():
        raw = os.environ.get(ENV_PREFIX + name.upper())
        if raw is None or name in given:
            continue
        try:
            out[name] = _parse(raw, info.annotation)
        except ValidationError:
            raise InputError(
                f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {name} "
                f"({_type_name(info.annotation)})"
            ) from None
    return out


def _parse(text: str, tp: Any) -> Any:
    tp, optional = _optional(tp)
    if optional and not text.strip():
        return None
    if get_origin(tp) is list:
        item = TypeAdapter(get_args(tp)[0])
        return [item.validate_strings(part.strip()) for part in text.split(",") if part.strip()]
    return TypeAdapter(tp).validate_strings(text if tp is str else text.strip())


#: Settings that change what is proposed: a resumed run must keep them, or it is another search.
#: (The agent's URL and the prompts may change: a server moves, a prompt is edited mid-run.)
SEARCH_DEFINING = tuple(name for name, _, flags in declared() if flags.defines_search)


def setting_conflicts(recorded: Mapping[str, Any], asked: Mapping[str, Any]) -> list[str]:
    """The search-defining settings that `asked` gives another value than the thread's `recorded`
    ones (a resumed thread searching with another proposer would be another search)."""
    base = Context.from_dict(recorded).to_dict()
    return [
        f"{k}: the thread has {base[k]!r}, asked {asked[k]!r}"
        for k in SEARCH_DEFINING
        if k in asked and asked[k] != base.get(k)
    ]


def conflict_error(thread_id: str, conflicts: list[str]) -> InputError:
    """What the CLI and the graph (a Studio or HTTP run) both say to a changed setting."""
    return InputError(
        f"thread {thread_id!r} was started with other settings ("
        + "; ".join(conflicts)
        + "); run it with its own settings or start another --thread"
    )
