"""A test double of the models behind the agents: answers each agent's prompt with a scripted reply.

It recognises the agent by its system prompt's first line ("You are the Planner ..."), so the real prompts,
the real LiteLLM call path (through ``tests.scripted_llm``) and the real parsing all run. Tests change
its fields (the planner's decision, a queue of SQL, the chart spec, the answer) or queue faults per agent.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from typing import Any

from tests.scripted_llm import Fault, Reply

AGENTS = {"Planner": "planner", "Data Manipulator": "manipulator", "Data Visualizer": "visualizer",
          "Analyst": "analyst", "Document Analyst": "text_answer", "Question Suggester": "suggest"}
_ROLE = re.compile(r"You are the ([A-Za-z ]+?) of ConvoInsight")


class Analyst:
    """Scripted replies per agent; every call is recorded with its agent name.

    ``plan`` is the planner's reply without its SQL; the SQL of the calls that write it (the planner's, then
    each manipulator repair) comes from the ``sql`` queue, else ``default_sql``. A visual hint of "auto" makes
    the visualizer draw the chart (``spec``); "bar" with a one-dimension result takes the server's template.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.plan = {"scope": "data_question", "chart": "auto", "insight": True,
                     "chart_title": "Revenue by region", "answer_brief": "Lead with the leading region.",
                     "plan_explainer": "I will sum revenue per region and chart it.",
                     "reason": "Compares revenue by region."}
        self.sql: collections.deque[str] = collections.deque()
        self.default_sql = "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY region ORDER BY region"
        self.spec: dict[str, Any] = {"mark": "bar", "title": "Revenue by region",
                                     "encoding": {"x": {"field": "region", "type": "nominal"},
                                                  "y": {"field": "revenue", "type": "quantitative"}},
                                     "data": {"name": "result"}}
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
            writes_sql = agent == "manipulator" or (agent == "planner" and self.plan["scope"] == "data_question"
                                                    and "sql" not in self.plan)
            sql = self.sql.popleft() if writes_sql and self.sql else self.default_sql
        replies = {
            "planner": json.dumps({"sql": sql if self.plan["scope"] == "data_question" else "", **self.plan}),
            "manipulator": json.dumps({"sql": sql}),
            "visualizer": json.dumps(self.spec),
            "analyst": self.answer,
            "text_answer": "The report says revenue grew 12 percent.",
            "suggest": json.dumps({"suggestions": ["Revenue by region?", "Top product?", "Monthly trend?",
                                                   "Why did South fall?"]}),
        }
        return Reply(replies.get(agent, "unscripted agent"), prompt_tokens=100, completion_tokens=20)

    def fail_next(self, agent: str, *steps: Fault | Reply) -> None:
        """Answer the next calls of ``agent`` with these steps (faults or malformed replies) first."""
        with self.lock:
            self.faults[agent].extend(steps)
