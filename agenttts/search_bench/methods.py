"""How the bench names a method: a proposer, the insights switched off, and racing."""

from __future__ import annotations

from dataclasses import dataclass

from agenttts.errors import InputError
from agenttts.proposers import PROPOSERS, proposer_class, split_variant

#: How a method's name says it races: ``insight+race0.25`` (racing share 0.25).
RACE_SUFFIX = "+race"


@dataclass(frozen=True)
class Method:
    """A method as the bench names it: a proposer, the insights switched off, and racing."""

    name: str
    proposer: str
    no_insights: tuple[int, ...] = ()
    racing: float | None = None

    @classmethod
    def parse(cls, name: str, racing: float | None = None) -> Method:
        """`name` as given (``insight-no2``, ``insight+race0.25``); `racing` adds the suffix."""
        if racing is not None:
            name = f"{name}{RACE_SUFFIX}{racing:g}"
        plain, _, share = name.partition(RACE_SUFFIX)
        try:
            race = float(share) if share else None
        except ValueError:
            raise InputError(f"method {name!r}: {share!r} is no racing share") from None
        base, off = split_variant(plain)
        if base not in PROPOSERS:
            raise InputError(
                f"unknown method {name!r} (known: {', '.join(PROPOSERS)}, and -noK, +raceS)"
            )
        return cls(name=name, proposer=base, no_insights=tuple(sorted(off)), racing=race)

    @property
    def plain(self) -> str:
        """The name without racing: what a racing run is compared with."""
        return self.name.partition(RACE_SUFFIX)[0]

    @property
    def uses_llm(self) -> bool:
        """Whether it asks an LLM agent (the proposer says so, `Proposer.uses_llm`)."""
        return proposer_class(self.proposer).uses_llm
