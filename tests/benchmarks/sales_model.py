"""A sales question and every agent's reply to it: this pipeline's (planner, manipulator, visualizer, analyst)
and those of the one before it (router, orchestrator, manipulator, visualizer, analyzer, compiler; commit
d51b459), for a model double (``tests.model_server``) to send."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tests.model_server import Reply

QUESTION = "Compare revenue by region"
SQL = ("SELECT region, ROUND(SUM(revenue), 2) AS revenue_usd FROM sales GROUP BY region "
       "ORDER BY revenue_usd DESC")
ANSWER = ("**Bottom line:** North leads revenue across the whole period, ahead of South and East; the gap "
          "between the first and the last region is wide.\n\n**Drivers:**\n- North sells the most units in "
          "every channel.\n- South keeps pace online but trails in stores.\n- West is the smallest market.\n\n"
          "**Next actions:**\n- Study what North's stores do differently.\n- Test the online offer in West.\n\n"
          "*Caveats:* one table, no costs or margins, so revenue is not profit. Confidence: Medium")
SPEC = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"name": "result"},
        "title": {"text": "Revenue by region"}, "mark": {"type": "bar", "tooltip": True},
        "encoding": {"x": {"field": "region", "type": "nominal", "sort": "-y", "title": "Region"},
                     "y": {"field": "revenue_usd", "type": "quantitative", "title": "Revenue (USD)"}}}


class SalesModel:
    """The replies of every agent to the question; ``chart`` is the chart kind the planner (router) names."""

    def __init__(self) -> None:
        self.chart = "bar"

    def __call__(self, agent: str, messages: list[dict[str, Any]]) -> Reply:
        brief = {"chart_title": "Revenue by region", "answer_brief": "Lead with the leading region.",
                 "plan_explainer": "I will sum revenue per region.", "reason": "Compares revenue by region."}
        replies = {
            "planner": {"scope": "data_question", "sql": SQL, "chart": self.chart, "insight": True, **brief},
            "router": {"scope": "data_question", "need_manipulator": True, "need_visualizer": True,
                       "need_analyzer": True, "visual_hint": self.chart, "reason": brief["reason"]},
            "orchestrator": {"manipulator_prompt": "Sum revenue per region, largest first.",
                             "visualizer_prompt": "A bar chart of revenue per region.",
                             "analyzer_prompt": "Which region leads, and by how much?",
                             "compiler_instruction": "Bottom line first.",
                             "plan_explainer": brief["plan_explainer"]},
            "manipulator": {"sql": SQL}, "visualizer": SPEC,
        }
        if agent in replies:
            return Reply(json.dumps(replies[agent]))
        text = {"analyzer": "- North leads every channel.\n- West is the smallest market.\n- South trails in "
                            "stores.", "analyst": ANSWER, "compiler": ANSWER}.get(agent, "Scripted.")
        return Reply(text)


def write_sales_csv(path: Path, rows: int = 500) -> None:
    """A small sales table: date, region, product, channel, units, revenue."""
    regions, channels = ["North", "South", "East", "West", "Central"], ["online", "store", "partner"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_date", "region", "product", "channel", "units", "revenue"])
        for n in range(rows):
            units = n * 7919 % 20 + 1
            writer.writerow([f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}", regions[n * 31 % 5 if n % 3 else 0],
                             f"Product {n % 17}", channels[n % 3], units, round(units * (9.5 + n % 13), 2)])
