"""Every error agenttts raises on purpose, in one module that every layer may import.

It imports nothing from agenttts, so the lowest layer (`environment/`) raises the same resumable
stop as the agent's client without importing an upper one. Each class says how `agenttts` exits
when it reaches `main()`, which maps them in one place; commands only raise. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import ClassVar


class AgentTTSError(Exception):
    """The base: an error agenttts raises on purpose, with a message meant for the user."""

    exit_code: ClassVar[int] = 1


class InputError(AgentTTSError, ValueError):
    """What was asked cannot run as asked, and nothing was spent: a bad task file, an unknown
    model, proposer, executor kind or prompt, conflicting settings, a bad bench request, sample
    store or grid table. Exit 2."""

    exit_code = 2


class ResumableStop(AgentTTSError, RuntimeError):
    """An endpoint or the agent cannot be reached: the run stops where it is, its thread stays
    saved, and the same command continues it once the server is back. Exit 3. `resume_when`
    says what must come back ("the agent endpoint is reachable"), for the runner's stop line."""

    exit_code = 3

    def __init__(
        self, message: str, *, resume_when: str = "the server is back", with_flags: str = ""
    ) -> None:
        super().__init__(message)
        self.resume_when = resume_when
        self.with_flags = with_flags  # what the command that continues must add (a raised limit)


class EmbeddedServerError(AgentTTSError, RuntimeError):
    """agenttts' own server could not be started or found; nothing was searched. Exit 2 (a live
    run needing the server turns it into a `ResumableStop`)."""

    exit_code = 2


class AgentError(AgentTTSError, RuntimeError):
    """The agent answered but could not be used at all (a refused request, no usable answer
    after the re-asks): the proposer records it on the run and the search goes on."""


class TrialError(AgentTTSError, RuntimeError):
    """One trial failed for good (a request still failing after its retries, a sample missing
    from a cache-only replay): recorded on that trial, never stopping the search."""


class UserCodeError(InputError):
    """Every item of a trial failed with the same error raised at the same line of the task's own
    code (its pipeline, graph or metric): a bug that no configuration can score past, not a
    transient fault, so the search stops at once instead of spending on more trials. Exit 2; the
    thread stays saved and continues once the code is fixed."""


#: What an executor lets through instead of recording it as a failed trial: these stop the run.
STOPS_THE_RUN: tuple[type[AgentTTSError], ...] = (ResumableStop, UserCodeError)
