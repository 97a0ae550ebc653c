"""How the bench names a method: a proposer, the insights switched off, racing, free evaluations.

``BASE[-noK...][+raceS][+nofree]``: ``insight-no2`` switches insight 2 off, ``+race0.25`` races on
training items from a quarter of them (`agenttts.racing`), ``+nofree`` turns free evaluations off
(`agenttts.derived`: the paper's search, for measuring what they bring to a method).
"""

from __future__ import annotations

from dataclasses import dataclass

from agenttts.errors import InputError
from agenttts.proposers import PROPOSERS, proposer_class, split_variant

#: How a method's name says it races: ``insight+race0.25`` (racing share 0.25).
RACE_SUFFIX = "+race"
#: How a method's name says it runs without free evaluations: ``random+nofree``.
NO_FREE_SUFFIX = "+nofree"


@dataclass(frozen=True)
class Method:
    """A method as the bench names it (see the module)."""

    name: str
    proposer: str
    no_insights: tuple[int, ...] = ()
    racing: float | None = None
    free_evaluations: bool = True

    @classmethod
    def parse(cls, name: str, racing: float | None = None) -> Method:
        """`name` as given (``insight-no2``, ``insight+race0.25``, ``tpe+nofree``); `racing`
        adds the racing suffix."""
        if racing is not None:
            name = f"{name}{RACE_SUFFIX}{racing:g}"
        rest, free = name, True
        if NO_FREE_SUFFIX in rest:
            rest, free = rest.replace(NO_FREE_SUFFIX, "", 1), False
        plain, _, share = rest.partition(RACE_SUFFIX)
        try:
            race = float(share) if share else None
        except ValueError:
            raise InputError(f"method {name!r}: {share!r} is no racing share") from None
        base, off = split_variant(plain)
        if base not in PROPOSERS:
            raise InputError(
                f"unknown method {name!r} (known: {', '.join(PROPOSERS)}, and -noK, +raceS, "
                f"{NO_FREE_SUFFIX})"
            )
        return cls(
            name=name,
            proposer=base,
            no_insights=tuple(sorted(off)),
            racing=race,
            free_evaluations=free,
        )

    @property
    def plain(self) -> str:
        """The name without racing: what a racing run is compared with."""
        head, _, share = self.name.partition(RACE_SUFFIX)
        return head + (NO_FREE_SUFFIX if NO_FREE_SUFFIX in share else "")

    @property
    def uses_llm(self) -> bool:
        """Whether it asks an LLM agent (the proposer says so, `Proposer.uses_llm`)."""
        return proposer_class(self.proposer).uses_llm
