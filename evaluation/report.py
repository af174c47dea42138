"""The report: per question and totals, as a Markdown table and as JSON."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from evaluation.runner import CaseResult


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile (a value that was observed; no interpolation between questions)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)]


def _group(results: Sequence[CaseResult]) -> dict[str, Any]:
    count = len(results)
    return {
        "questions": count, "correct": sum(result.correct for result in results),
        "accuracy_pct": round(100 * sum(result.correct for result in results) / count, 1) if count else 0.0,
        "mean_calls": round(sum(result.calls for result in results) / count, 2) if count else 0.0,
        "mean_rounds": round(sum(result.rounds for result in results) / count, 2) if count else 0.0,
        "p50_latency_s": round(percentile([result.latency_s for result in results], 50), 3),
        "p95_latency_s": round(percentile([result.latency_s for result in results], 95), 3),
    }


def totals(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Accuracy, mean calls and rounds, tokens, cost and latency percentiles, overall and per kind and topic."""
    return {
        **_group(results),
        "prompt_tokens": sum(result.prompt_tokens for result in results),
        "completion_tokens": sum(result.completion_tokens for result in results),
        "cost_usd": round(sum(result.cost_usd for result in results), 6),
        "by_kind": {kind: _group([r for r in results if r.kind == kind]) for kind in dict.fromkeys(
            result.kind for result in results)},
        "by_topic": {topic: _group([r for r in results if r.topic == topic]) for topic in dict.fromkeys(
            result.topic for result in results)},
    }


def build_report(results: Sequence[CaseResult], *, model: str, target: str) -> dict[str, Any]:
    """The whole report as plain data (what ``--json`` writes)."""
    models = sorted({name for result in results for name in result.models})
    return {"model": model, "models_called": models, "target": target, "totals": totals(results),
            "cases": [dataclasses.asdict(result) for result in results]}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: one row per question, then the totals."""
    lines = [f"# Accuracy: {report['model']}", "",
             "| # | case | topic | result | calls | rounds | prompt tok | completion tok | cost USD | latency s "
             "| why not |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for number, case in enumerate(report["cases"], 1):
        lines.append("| " + " | ".join(_cell(value) for value in (
            number, case["id"], case["topic"], "correct" if case["correct"] else "WRONG", case["calls"],
            case["rounds"], case["prompt_tokens"], case["completion_tokens"], f"{case['cost_usd']:.6f}",
            f"{case['latency_s']:.2f}", case["why_not"])) + " |")
    total = report["totals"]
    lines += ["", "## Totals", "", "| figure | value |", "|---|---|",
              f"| accuracy | {total['accuracy_pct']:.1f}% ({total['correct']} of {total['questions']}) |",
              f"| mean model calls per question | {total['mean_calls']:.2f} |",
              f"| mean sequential rounds per question | {total['mean_rounds']:.2f} |",
              f"| tokens | {total['prompt_tokens']:,} prompt + {total['completion_tokens']:,} completion |",
              f"| cost | {total['cost_usd']:.4f} USD{_cost_note(total)} |",
              f"| latency p50 / p95 | {total['p50_latency_s']:.2f} s / {total['p95_latency_s']:.2f} s |",
              f"| models called | {', '.join(report['models_called']) or '(none)'} |",
              "", "| kind or topic | questions | accuracy | mean calls | mean rounds | p50 s | p95 s |",
              "|---|---|---|---|---|---|---|"]
    for label, group in [*((f"kind: {kind}", group) for kind, group in total["by_kind"].items()),
                         *((f"topic: {topic}", group) for topic, group in total["by_topic"].items())]:
        lines.append(f"| {_cell(label)} | {group['questions']} | {group['accuracy_pct']:.1f}% | "
                     f"{group['mean_calls']:.2f} | {group['mean_rounds']:.2f} | {group['p50_latency_s']:.2f} | "
                     f"{group['p95_latency_s']:.2f} |")
    return "\n".join(lines) + "\n"


def _cost_note(total: dict[str, Any]) -> str:
    if total["cost_usd"] == 0 and total["prompt_tokens"]:
        return " (LiteLLM knows no price for this model)"
    return ""


def exit_code(report: dict[str, Any], min_accuracy: float | None) -> int:
    """0, or 1 when ``min_accuracy`` (percent) is given and the accuracy is below it."""
    if min_accuracy is not None and report["totals"]["accuracy_pct"] < min_accuracy:
        return 1
    return 0
