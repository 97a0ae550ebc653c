"""The run's settings: passed as LangGraph runtime context, so Studio shows and edits them.

Settings are not part of the graph state on purpose: they say *how* to search, the state says what
was found. The runner records them in the state once (``settings``) so a resumed run can be held to
the settings it started with.

Each setting is declared here once, with `setting()`: type, default, bounds, description, whether it
defines the search, and the old command-line spellings. Everything else is derived from these
fields: `SEARCH_DEFINING`, the flags of `agenttts search`, `bench` and `demo`
(`agenttts.cli.settings`), the agent endpoint of the LLM proposers (`agent_endpoint`), the checks
(`problems`), the bounds Studio shows (pydantic reads `ge`/`gt` and `description` from the
metadata), and the environment fallbacks (`AGENTTTS_<FIELD>`, as LangGraph's react-agent does).
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from agenttts.errors import InputError
from agenttts.prompting import INSIGHTS

if TYPE_CHECKING:
    from agenttts.llm import AgentEndpoint
    from agenttts.proposers.base import ProposerSettings

#: Environment variables `AGENTTTS_<FIELD>` fill the settings a run leaves at their default.
ENV_PREFIX = "AGENTTTS_"


class _Metadata(Mapping[str, Any]):
    """A field's metadata whose callable description is computed when read (by Studio's schema or
    `--help`): the proposer list comes from the registry, which this module must not import at
    import time (the registry pulls in the proposers, the archive and the task schema)."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        value = self._items[key]
        return value() if key == "description" and callable(value) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    description: str | Callable[[], str],
    default_factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    gt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    check: Callable[[str, Any], str | None] | None = None,
    defines_search: bool = False,
    off: Any = None,
    path: bool = False,
    metavar: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Any:
    """One run setting. `ge`/`gt` bound it (None always passes), `choices` bound a list's items,
    `check(name, value)` returns a problem or None; `defines_search`: a resumed run must keep it.
    For the command line: `off` is the flag value that means None (patience 0), `path` expands
    `~`, `aliases` are older flag spellings."""
    meta: dict[str, Any] = {"description": description, "defines_search": defines_search}
    optional = {
        "ge": ge,
        "gt": gt,
        "choices": choices,
        "check": check,
        "off": off,
        "metavar": metavar,
    }
    meta.update({k: v for k, v in optional.items() if v is not None})
    if path:
        meta["path"] = True
    if aliases:
        meta["aliases"] = aliases
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=_Metadata(meta))
    return dataclasses.field(default=default, metadata=_Metadata(meta))


def _proposer_description() -> str:
    from agenttts.proposers import PROPOSERS

    return (
        f"Search method by name: {', '.join(PROPOSERS)} (agenttts is the LLM agent, insight the "
        "three insights as code); NAME-noN switches insight N off (e.g. insight-no2)."
    )


def _known_proposer(name: str, value: Any) -> str | None:
    from agenttts.proposers import PROPOSERS, split_variant

    if split_variant(value)[0] in PROPOSERS:
        return None
    return f"unknown {name} {value!r} (known: {', '.join(PROPOSERS)})"


def _a_share(name: str, value: Any) -> str | None:
    if value is not None and not 0 < value < 1:
        return f"{name} must be a share of the training items between 0 and 1, e.g. 0.25"
    return None


def _prompt_folder(name: str, value: Any) -> str | None:
    """A prompts folder agenttts can use as is (misspelled files, unknown placeholders, ...)."""
    from agenttts.prompting import check_prompts_dir

    problems = check_prompts_dir(value) if value else []
    return f"{name}: " + "; ".join(problems) if problems else None


@dataclass(kw_only=True)
class Context:
    """How one search runs. Every field shows up, with its description, in LangGraph Studio."""

    proposer: str = setting(
        "agenttts",
        description=_proposer_description,
        check=_known_proposer,
        defines_search=True,
    )
    agent_model: str = setting(
        "smollm2",
        description="Model name the agent endpoint serves (LLM proposers only).",
        defines_search=True,
    )
    agent_base_url: str = setting(
        "embedded",
        description="OpenAI-compatible base URL of the agent, e.g. http://127.0.0.1:8000/v1; "
        "'embedded' means the server agenttts starts itself.",
    )
    agent_api_key_env: str | None = setting(
        "OPENAI_API_KEY",
        description="NAME of the environment variable holding the agent's key (the key itself is "
        "never stored). Local servers need none.",
        metavar="NAME",
        aliases=("--agent-key-env",),
    )
    agent_temperature: float = setting(
        0.9,
        description="Sampling temperature of the agent (the paper uses 0.9).",
        defines_search=True,
        aliases=("--temperature",),
    )
    agent_timeout_s: float = setting(
        120.0,
        description="Seconds one agent call may take before the endpoint counts as unreachable.",
        gt=0,
        metavar="S",
        aliases=("--agent-timeout",),
    )
    agent_max_tokens: int = setting(
        1024,
        description="Most tokens one agent answer may hold: caps the agent's own cost and time.",
        ge=16,
        metavar="N",
    )
    agent_params: float | None = setting(
        None,
        description="Parameter count of the agent model, to count its tokens in the search cost "
        "(the budget formula with these parameters); empty: the embedded server's own size when "
        "the agent is 'embedded', else agent tokens are reported but cost no units.",
        gt=0,
        metavar="N",
    )
    batch_size: int = setting(
        10, description="Configurations proposed per iteration.", ge=1, defines_search=True
    )
    max_iterations: int = setting(10, description="Stop after this many search iterations.", ge=1)
    max_trials: int | None = setting(
        None,
        description="Stop once this many trials were executed (initial trials included); empty: "
        "no cap.",
        ge=1,
    )
    patience: int | None = setting(
        4,
        description="Stop after this many iterations in a row without a better score; empty: off.",
        ge=1,
        off=0,
    )
    target: float | None = setting(
        None, description="Stop as soon as the main metric reaches this score; empty: off."
    )
    no_insights: list[int] = setting(  # noqa: RUF009 - setting() is a dataclasses.field()
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
        check=_a_share,
        defines_search=True,
        metavar="SHARE",
    )
    report_dir: str = setting(
        ".agenttts/reports",
        description="Where the final report (JSON, Markdown, PNG) goes, one folder per thread.",
        path=True,
    )

    def __post_init__(self) -> None:
        """A setting left at its default takes `$AGENTTTS_<FIELD>` when that is set (as in the
        react-agent template; `from_dict` holds every setting it is given)."""
        hints = _hints()
        for f in fields(self):
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or getattr(self, f.name) != default_of(f.name):
                continue
            try:
                value = _parse(raw, hints[f.name])
            except ValueError:
                raise InputError(
                    f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {f.name} ({f.type})"
                ) from None
            setattr(self, f.name, value)

    def problems(self) -> list[str]:
        """What makes these settings unusable, every problem at once, before anything is spent."""
        hints = _hints()
        out: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not _accepts(hints[f.name], value):
                out.append(f"{f.name} must be of type {f.type} (got {value!r})")
                continue
            out += _bound_problems(f.name, value, f.metadata)
        return out

    def validate(self) -> Context:
        """These settings, or InputError naming every problem (the text the CLI prints too)."""
        problems = self.problems()
        if problems:
            raise InputError("; ".join(problems))
        return self

    def agent_endpoint(self, **overrides: Any) -> AgentEndpoint:
        """The LLM proposers' agent: every `agent_*` setting, named without the prefix; `overrides`
        set endpoint fields that are no run setting (`max_parse_retries`) or replace one."""
        from agenttts.llm import AgentEndpoint

        agent = {
            f.name.removeprefix("agent_"): getattr(self, f.name)
            for f in fields(self)
            if f.name.startswith("agent_")
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
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain, for the state's record of the settings a run started with."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Context:
        """Settings from a mapping (keys that are no setting are ignored), held as given: the
        environment fills only the settings `raw` lacks, so a resumed run's record is kept."""
        given = {f.name: raw[f.name] for f in fields(cls) if f.name in raw}
        ctx = cls(**given)
        for name, value in given.items():  # even one equal to its default beats the environment
            setattr(ctx, name, value)
        return ctx


def default_of(name: str) -> Any:
    """A setting's declared default (a fresh one for a default factory)."""
    f = _field(name)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


@cache
def _hints() -> dict[str, Any]:
    return get_type_hints(Context)


def _field(name: str) -> dataclasses.Field[Any]:
    return next(f for f in fields(Context) if f.name == name)


def _bound_problems(name: str, value: Any, meta: Mapping[str, Any]) -> list[str]:
    if value is None:
        return []
    out: list[str] = []
    if "ge" in meta and value < meta["ge"]:
        out.append(f"{name} must be at least {meta['ge']}")
    if "gt" in meta and value <= meta["gt"]:
        gt = meta["gt"]
        out.append(f"{name} must be positive" if gt == 0 else f"{name} must exceed {gt}")
    if "choices" in meta:
        bad = [v for v in value if v not in meta["choices"]]
        if bad:
            allowed = ", ".join(map(str, meta["choices"]))
            out.append(f"{name} may hold only {allowed} (got {bad})")
    if "check" in meta:
        problem = meta["check"](name, value)
        if problem:
            out.append(problem)
    return out


def base_type(name: str) -> Any:
    """A setting's type without its None: `int` for `int | None`, `list[int]` for itself."""
    return _optional(_hints()[name])[0]


def _optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (tp, False)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(get_args(tp))
    return tp, False


def _accepts(tp: Any, value: Any) -> bool:
    """Whether `value` is JSON-plain of type `tp` (an int is a float, a bool is no number)."""
    tp, optional = _optional(tp)
    if value is None:
        return optional
    if get_origin(tp) is list:
        return isinstance(value, list) and all(_accepts(get_args(tp)[0], v) for v in value)
    if isinstance(value, bool):
        return tp is bool
    if tp is float:
        return isinstance(value, int | float)
    return isinstance(value, tp)


def _parse(text: str, tp: Any) -> Any:
    """An environment variable's text as type `tp`; lists are comma-separated, empty is None."""
    tp, optional = _optional(tp)
    if optional and not text.strip():
        return None
    if get_origin(tp) is list:
        item = get_args(tp)[0]
        return [item(part.strip()) for part in text.split(",") if part.strip()]
    if tp is bool:  # bool("false") is True: read the words people write
        word = text.strip().lower()
        if word not in _BOOLS:
            raise ValueError(word)
        return _BOOLS[word]
    return tp(text)


_BOOLS = {"1": True, "true": True, "yes": True, "on": True} | {
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


#: Settings that change what is proposed: a resumed run must keep them, or it is another search.
#: (The agent's URL and the prompts may change: a server moves, a prompt is edited mid-run.)
SEARCH_DEFINING = tuple(f.name for f in fields(Context) if f.metadata["defines_search"])


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
