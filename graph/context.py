"""The run's settings: passed as LangGraph runtime context, so Studio shows and edits them.

Settings are not part of the graph state on purpose: they say *how* to search, the state says what
was found. The runner records them in the state once (``settings``) so a resumed run can be held to
the settings it started with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agenttts.proposers.base import AgentEndpoint, ProposerSettings

INSIGHTS = (1, 2, 3)


def _d(text: str) -> dict[str, str]:
    return {"description": text}


@dataclass(kw_only=True)
class Context:
    """How one search runs. Every field shows up, with its description, in LangGraph Studio."""

    proposer: str = field(
        default="agenttts",
        metadata=_d(
            "Search method by name: agenttts (the LLM agent), insight (the three insights as code, "
            "no LLM), random, tpe, gp, agenthpo, mlcopilot, grid; NAME-noN switches insight N "
            "off (e.g. insight-no2)."
        ),
    )
    agent_model: str = field(
        default="smollm2", metadata=_d("Model name the agent endpoint serves (LLM proposers only).")
    )
    agent_base_url: str = field(
        default="embedded",
        metadata=_d(
            "OpenAI-compatible base URL of the agent, e.g. http://127.0.0.1:8000/v1; 'embedded' "
            "means the server agenttts starts itself."
        ),
    )
    agent_api_key_env: str | None = field(
        default="OPENAI_API_KEY",
        metadata=_d(
            "NAME of the environment variable holding the agent's key (the key itself is never "
            "stored). Local servers need none."
        ),
    )
    agent_temperature: float = field(
        default=0.9, metadata=_d("Sampling temperature of the agent (the paper uses 0.9).")
    )
    agent_timeout_s: float = field(
        default=120.0,
        metadata=_d("Seconds one agent call may take before the endpoint counts as unreachable."),
    )
    agent_max_tokens: int = field(
        default=1024,
        metadata=_d("Most tokens one agent answer may hold: caps the agent's own cost and time."),
    )
    batch_size: int = field(default=10, metadata=_d("Configurations proposed per iteration."))
    max_iterations: int = field(default=10, metadata=_d("Stop after this many search iterations."))
    max_trials: int | None = field(
        default=None,
        metadata=_d(
            "Stop once this many trials were executed (initial trials included); empty: no cap."
        ),
    )
    patience: int | None = field(
        default=4,
        metadata=_d("Stop after this many iterations in a row without a better score; empty: off."),
    )
    target: float | None = field(
        default=None, metadata=_d("Stop as soon as the main metric reaches this score; empty: off.")
    )
    no_insights: list[int] = field(
        default_factory=list,
        metadata=_d(
            "Ablation: insights switched off (1 model preference, 2 per-stage sample optimum, "
            "3 budget trade-offs between stages). Switching 1 off skips the initialisation."
        ),
    )
    prompts_dir: str | None = field(
        default=None,
        metadata=_d("Folder whose prompt files override the shipped ones (read at each node run)."),
    )
    seed: int = field(
        default=0, metadata=_d("Seed of the proposer (a resumed run proposes the same).")
    )
    report_dir: str = field(
        default=".agenttts/reports",
        metadata=_d("Where the final report (JSON, Markdown, PNG) goes, one folder per thread."),
    )

    def problems(self) -> list[str]:
        """What makes these settings unusable, checked before anything is spent."""
        from agenttts.proposers import PROPOSERS, split_variant

        out: list[str] = []
        if split_variant(self.proposer)[0] not in PROPOSERS:
            out.append(f"unknown proposer {self.proposer!r} (known: {', '.join(PROPOSERS)})")
        if self.agent_timeout_s <= 0:
            out.append("agent_timeout_s must be positive")
        if self.agent_max_tokens < 16:
            out.append("agent_max_tokens must be at least 16")
        if self.batch_size < 1:
            out.append("batch_size must be at least 1")
        if self.max_iterations < 1:
            out.append("max_iterations must be at least 1")
        if self.max_trials is not None and self.max_trials < 1:
            out.append("max_trials must be at least 1")
        if self.patience is not None and self.patience < 1:
            out.append("patience must be at least 1")
        bad = [i for i in self.no_insights if i not in INSIGHTS]
        if bad:
            out.append(f"no_insights may hold only 1, 2, 3 (got {bad})")
        if self.prompts_dir and not Path(self.prompts_dir).expanduser().is_dir():
            out.append(f"prompts_dir {self.prompts_dir} is not a folder")
        return out

    def proposer_settings(self) -> ProposerSettings:
        return ProposerSettings(
            seed=self.seed,
            no_insights=frozenset(self.no_insights),
            prompts_dir=Path(self.prompts_dir).expanduser() if self.prompts_dir else None,
            agent=AgentEndpoint(
                model=self.agent_model,
                base_url=self.agent_base_url,
                api_key_env=self.agent_api_key_env,
                temperature=self.agent_temperature,
                timeout_s=self.agent_timeout_s,
                max_tokens=self.agent_max_tokens,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain, for the state's record of the settings a run started with."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Context:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


#: Settings that change what is proposed: a resumed run must keep them, or it is another search.
#: (The agent's URL and the prompts may change: a server moves, a prompt is edited mid-run.)
SEARCH_DEFINING = (
    "proposer",
    "agent_model",
    "agent_temperature",
    "batch_size",
    "no_insights",
    "seed",
)
