"""A test double of the models behind the agents: answers each agent's prompt with a scripted reply.

It recognises the agent by its system prompt's first line ("You are the Router ..."), so the real prompts,
the real LiteLLM call path (through ``tests.scripted_llm``) and the real parsing all run. Tests change
its fields (the router's decision, a queue of SQL, the chart spec, the answer) or queue faults per agent.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from typing import Any

from tests.scripted_llm import Fault, Reply

AGENTS = {"Router": "router", "Orchestrator": "orchestrator", "Data Manipulator": "manipulator",
          "Data Visualizer": "visualizer", "Data Analyzer": "analyzer", "Response Compiler": "compiler",
          "Document Analyst": "text_answer", "Question Suggester": "suggest"}
_ROLE = re.compile(r"You are the ([A-Za-z ]+?) of ConvoInsight")


class Analyst:
    """Scripted replies per agent; every call is recorded with its agent name."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.router = {"scope": "data_question", "need_manipulator": True, "need_visualizer": True,
                       "need_analyzer": True, "visual_hint": "bar", "reason": "Compares revenue by region."}
        self.sql: collections.deque[str] = collections.deque()
        self.default_sql = "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY region ORDER BY region"
        self.spec: dict[str, Any] = {"mark": "bar", "title": "Revenue by region",
                                     "encoding": {"x": {"field": "region", "type": "nominal"},
                                                  "y": {"field": "revenue", "type": "quantitative"}},
                                     "data": {"name": "result"}}
        self.analysis = "- North leads with 250 of 330 (75.8%)."
        self.answer = "**Bottom line:** North made 250, South 80."
        self.faults: dict[str, collections.deque[Any]] = collections.defaultdict(collections.deque)
        self.calls: list[tuple[str, list[dict[str, str]], str | None]] = []

    def agent_of(self, messages: list[dict[str, str]]) -> str:
        match = _ROLE.search(messages[0]["content"])
        return AGENTS.get(match.group(1), "unknown") if match else "unknown"

    def agents_called(self) -> list[str]:
        return [agent for agent, _, _ in self.calls]

    def __call__(self, call: Any) -> Any:
        agent = self.agent_of(call.messages)
        with self.lock:
            self.calls.append((agent, call.messages, call.api_key))
            if self.faults[agent]:
                return self.faults[agent].popleft()
            sql = self.sql.popleft() if agent == "manipulator" and self.sql else self.default_sql
        replies = {
            "router": json.dumps(self.router),
            "orchestrator": json.dumps({"manipulator_prompt": "Sum revenue per region.",
                                        "visualizer_prompt": "A bar chart of revenue per region.",
                                        "analyzer_prompt": "Which region leads, by how much?",
                                        "compiler_instruction": "Bottom line first.",
                                        "plan_explainer": "I will sum revenue per region and chart it."}),
            "manipulator": json.dumps({"sql": sql}),
            "visualizer": json.dumps(self.spec),
            "analyzer": self.analysis,
            "compiler": self.answer,
            "text_answer": "The report says revenue grew 12 percent.",
            "suggest": json.dumps({"suggestions": ["Revenue by region?", "Top product?", "Monthly trend?",
                                                   "Why did South fall?"]}),
        }
        return Reply(replies.get(agent, "unscripted agent"), prompt_tokens=100, completion_tokens=20)

    def fail_next(self, agent: str, *steps: Fault | Reply) -> None:
        """Answer the next calls of ``agent`` with these steps (faults or malformed replies) first."""
        with self.lock:
            self.faults[agent].extend(steps)
