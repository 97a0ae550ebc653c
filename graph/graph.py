"""The AgentTTS search as one LangGraph graph: the whole loop at a glance.

    init_trials -> init_preferences
                          |
                          v
    generate_guidelines -> propose_trials -> execute_trials -> check_stop
          ^                                   ^    | racing  |
          |                                   +----+ (rungs) |
          +----------------- go on --------------------------+
                                                             | stop
                                                    final_evaluation

The initial trials and the agent's preferences are two nodes so that the trials are checkpointed
before the agent is asked: an unreachable agent then loses none of them.

`make_graph(checkpointer)` serves the CLI (SQLite or Postgres, `storage.py`); the module-level
`graph` has no checkpointer because `langgraph dev` refuses one that brings its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.graph import END, START, StateGraph

from agenttts.graph.context import Context
from agenttts.graph.state import InputState, State
from agenttts.nodes.check_stop import check_stop, route
from agenttts.nodes.execute_trials import execute_trials
from agenttts.nodes.execute_trials import route as race_on
from agenttts.nodes.final_evaluation import final_evaluation
from agenttts.nodes.generate_guidelines import generate_guidelines
from agenttts.nodes.init_preferences import init_preferences
from agenttts.nodes.init_trials import init_trials
from agenttts.nodes.propose_trials import propose_trials

NODES = (
    "init_trials",
    "init_preferences",
    "generate_guidelines",
    "propose_trials",
    "execute_trials",
    "check_stop",
    "final_evaluation",
)


def make_graph(checkpointer: Any = None, *, interrupt_before: Sequence[str] = ()) -> Any:
    builder = StateGraph(State, context_schema=Context, input_schema=InputState)
    builder.add_node("init_trials", init_trials)
    builder.add_node("init_preferences", init_preferences)
    builder.add_node("generate_guidelines", generate_guidelines)
    builder.add_node("propose_trials", propose_trials)
    builder.add_node("execute_trials", execute_trials)
    builder.add_node("check_stop", check_stop)
    builder.add_node("final_evaluation", final_evaluation)

    builder.add_edge(START, "init_trials")
    builder.add_edge("init_trials", "init_preferences")
    builder.add_edge("init_preferences", "generate_guidelines")
    builder.add_edge("generate_guidelines", "propose_trials")
    builder.add_edge("propose_trials", "execute_trials")
    builder.add_conditional_edges("execute_trials", race_on)  # racing: one rung per step
    builder.add_conditional_edges("check_stop", route)
    builder.add_edge("final_evaluation", END)
    return builder.compile(
        checkpointer=checkpointer, interrupt_before=list(interrupt_before), name="agenttts"
    )


graph = make_graph()
