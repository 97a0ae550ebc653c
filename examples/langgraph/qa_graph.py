"""An ordinary LangGraph pipeline (pick the passages, then answer), searched by agenttts.

The only change from the version that runs on fixed models is the two model objects: where it had
`ChatOpenAI(model=...)`, it asks agenttts for the stage's chat model. Under search, each call draws
the trial's S samples of that stage and returns their aggregate (vote over ids, majority answer)
as one message; everything else is plain LangChain and LangGraph.
"""

from __future__ import annotations

import re
from typing import TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph

from agenttts.pipeline import stages

# was: select_llm = ChatOpenAI(model="gpt-4o-mini", temperature=0.9)
select_llm = stages["select"].chat_model()
# was: answer_llm = ChatOpenAI(model="gpt-4o-mini", temperature=0.9)
answer_llm = stages["answer"].chat_model()


class State(TypedDict, total=False):
    question: str
    passages: list[str]
    context: list[str]
    answer: str


def numbered(passages: list[str]) -> str:
    return "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))


async def select(state: State) -> State:
    passages = state["passages"]
    reply = await select_llm.ainvoke(
        [
            SystemMessage("You pick the passages needed to answer a question."),
            HumanMessage(
                f"Question: {state['question']}\n\nPassages:\n{numbered(passages)}\n\n"
                "Which passages are needed? Reply with their numbers only (for example: 2, 4)."
            ),
        ]
    )
    picked = [int(n) for n in re.findall(r"\d+", str(reply.content))]
    context = [passages[n - 1] for n in picked if 1 <= n <= len(passages)]
    return {"context": context or passages}


def answer(state: State) -> State:  # a sync node: LangGraph runs it in a worker thread
    reply = answer_llm.invoke(
        [
            SystemMessage("Answer with a short answer only, no explanation."),
            HumanMessage(
                f"Passages:\n{numbered(state['context'])}\n\nQuestion: {state['question']}\n"
                'Reply in the form "Answer: <short answer>".'
            ),
        ]
    )
    text = str(reply.content)
    return {"answer": text.rsplit("Answer:", 1)[-1].strip().strip(".")}


builder = StateGraph(State)
builder.add_node("select", select)
builder.add_node("answer", answer)
builder.add_edge(START, "select")
builder.add_edge("select", "answer")
builder.add_edge("answer", END)
graph = builder.compile()
