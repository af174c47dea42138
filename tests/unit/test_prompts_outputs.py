"""Replies in each agent's format: JSON tolerated inside fences and prose, then checked strictly with a clear reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.errors import UpstreamError
from common.prompts import OutputFormatError, load_prompts, parse_output, retry_instruction
from common.prompts import schema as output_schema

PLANNER_REPLY = {"scope": "data_question", "sql": "SELECT month, SUM(revenue) AS revenue FROM sales GROUP BY 1",
                 "chart": "line", "insight": False, "chart_title": "Revenue by month", "answer_brief": "Lead with it.",
                 "plan_explainer": "Monthly revenue.", "reason": "Asks for the monthly revenue trend."}
SPEC = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"name": "result"},
        "title": {"text": "Revenue by month"}, "mark": {"type": "line", "point": True},
        "encoding": {"x": {"field": "month", "type": "temporal", "title": "Month"},
                     "y": {"field": "revenue", "type": "quantitative", "title": "Revenue (millions)"}}}


def _template(name: str) -> Any:
    return load_prompts()[name]


def _reason(name: str, reply: str) -> str:
    with pytest.raises(OutputFormatError) as caught:
        parse_output(_template(name), reply)
    return caught.value.reason


@pytest.mark.parametrize("reply", [
    json.dumps(PLANNER_REPLY),
    "```json\n" + json.dumps(PLANNER_REPLY, indent=2) + "\n```",
    "Sure! Here is my decision:\n" + json.dumps(PLANNER_REPLY) + "\nLet me know if you need more.",
    "Considering {the profiles} and the question, the plan is " + json.dumps(PLANNER_REPLY) + ".",
    "Reasoning first.\n```json\n" + json.dumps(PLANNER_REPLY) + "\n```\nDone.",
])
def test_json_is_found_inside_fences_and_prose(reply: str) -> None:
    assert parse_output(_template("planner"), reply) == PLANNER_REPLY


def test_extra_keys_are_kept() -> None:
    reply = {**PLANNER_REPLY, "confidence": "high"}
    assert parse_output(_template("planner"), json.dumps(reply))["confidence"] == "high"


def test_a_missing_key_is_named() -> None:
    reply = {key: value for key, value in PLANNER_REPLY.items() if key != "chart"}
    assert _reason("planner", json.dumps(reply)) == 'reply is missing required key(s) "chart"'


def test_a_value_outside_its_enum_is_refused_with_the_choices() -> None:
    reason = _reason("planner", json.dumps({**PLANNER_REPLY, "scope": "maybe"}))
    assert reason == ('reply.scope must be one of "data_question", "small_talk", "out_of_scope", '
                      'got string "maybe"')


def test_a_value_of_the_wrong_type_is_refused() -> None:
    reason = _reason("planner", json.dumps({**PLANNER_REPLY, "insight": "yes"}))
    assert reason == 'reply.insight must be a boolean, got string "yes"'


@pytest.mark.parametrize(("reply", "expected"), [
    ("I think the user wants a chart of revenue.", "the reply contains no JSON object"),
    ('{"scope": "data_question", "insight": tru', "the reply is not valid JSON: Expecting value"),
    ("[1, 2, 3]", "the reply must be a JSON object, got a JSON list"),
    ("   ", "the reply is empty"),
])
def test_non_json_is_refused_with_the_reason(reply: str, expected: str) -> None:
    assert _reason("planner", reply).startswith(expected)


def test_the_error_is_an_upstream_error_that_carries_its_reason() -> None:
    with pytest.raises(OutputFormatError) as caught:
        parse_output(_template("manipulator"), '{"sql": ""}')
    error = caught.value
    assert isinstance(error, UpstreamError) and error.status == 502 and error.code == "LLM_OUTPUT_INVALID"
    assert error.reason == "reply.sql must have at least 1 character, got 0"
    assert "manipulator" in error.message and error.details["prompt"] == "manipulator"


def test_the_retry_instruction_quotes_the_reason_and_the_format() -> None:
    template = _template("planner")
    with pytest.raises(OutputFormatError) as caught:
        parse_output(template, json.dumps({**PLANNER_REPLY, "scope": "maybe"}))
    message = retry_instruction(template, caught.value)
    assert caught.value.reason in message and '"scope"' in message and '"chart"' in message


def test_the_manipulator_reply_is_its_sql() -> None:
    reply = '```json\n{"sql": "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY ALL"}\n```'
    assert parse_output(_template("manipulator"), reply) == {
        "sql": "SELECT region, SUM(revenue) AS revenue FROM sales GROUP BY ALL"}


@pytest.mark.parametrize(("suggestions", "expected"), [
    (["a", "b", "c"], "reply.suggestions must have at least 4 items, got 3"),
    (["a", "b", "c", "d", "e"], "reply.suggestions must have at most 4 items, got 5"),
    (["a", "b", "c", "x" * 101], "reply.suggestions[3] must have at most 100 characters, got 101"),
    (["a", "b", "c", 4], "reply.suggestions[3] must be a string, got integer 4"),
])
def test_suggestions_are_exactly_four_short_strings(suggestions: list, expected: str) -> None:
    assert _reason("suggest", json.dumps({"suggestions": suggestions})) == expected


def test_four_suggestions_are_accepted() -> None:
    reply = {"suggestions": ["Revenue trend by month?", "Top 5 regions?", "Why did March drop?", "Orders in Q1?"]}
    assert parse_output(_template("suggest"), json.dumps(reply)) == reply


def test_json_booleans_are_not_numbers() -> None:
    with pytest.raises(ValueError, match="must be an integer, got boolean true"):
        output_schema.validate(True, {"type": "integer"})
    output_schema.validate(3, {"type": "number"})


# --- markdown ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    "**Bottom line:** revenue rose 12%.\n\n- West: +8%",
    "```markdown\n**Bottom line:** revenue rose 12%.\n\n- West: +8%\n```",
    "```\n**Bottom line:** revenue rose 12%.\n\n- West: +8%\n```\n",
    "\n\n**Bottom line:** revenue rose 12%.\n\n- West: +8%   \n",
])
def test_markdown_is_returned_without_a_wrapping_fence(reply: str) -> None:
    assert parse_output(_template("analyst"), reply) == "**Bottom line:** revenue rose 12%.\n\n- West: +8%"


def test_markdown_keeps_an_inner_fence_of_another_language() -> None:
    reply = "```python\nprint(1)\n```"
    assert parse_output(_template("analyst"), reply) == reply


def test_an_empty_markdown_reply_is_refused() -> None:
    assert _reason("analyst", "\n  \n") == "the reply is empty"


# --- vega-lite -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply", [json.dumps(SPEC), "```json\n" + json.dumps(SPEC, indent=2) + "\n```",
                                   "Here is the chart spec: " + json.dumps(SPEC)])
def test_a_vega_lite_spec_bound_to_the_result_is_accepted(reply: str) -> None:
    assert parse_output(_template("visualizer"), reply) == SPEC


def test_a_layered_spec_without_schema_is_accepted() -> None:
    spec = {"data": {"name": "result"}, "layer": [{"mark": "bar"}, {"mark": {"type": "text", "dx": 4}}]}
    assert parse_output(_template("visualizer"), json.dumps(spec)) == spec


def _without(key: str) -> dict[str, Any]:
    return {name: value for name, value in SPEC.items() if name != key}


@pytest.mark.parametrize(("spec", "expected"), [
    ({**SPEC, "data": {"values": [{"month": "2025-01", "revenue": 1}]}}, "\"data\" must be exactly"),
    (_without("data"), "\"data\" must be exactly"),
    ({**SPEC, "data": {"url": "https://evil.example/data.csv"}}, "\"data\" must be exactly"),
    (_without("mark"), "no \"mark\" or \"layer\""),
    ({**SPEC, "$schema": "https://vega.github.io/schema/vega-lite/v4.json"}, "Vega-Lite v5 schema"),
    ({**_without("mark"), "layer": [{"mark": "line", "data": {"url": "https://evil.example/x.json"}}]},
     "spec.layer[0].data must be"),
    ({**SPEC, "encoding": {**SPEC["encoding"], "href": {"value": "https://evil.example"}}},
     "spec.encoding.href is not allowed"),
    ({**SPEC, "datasets": {"result": [{"month": 1}]}}, "spec.datasets is not allowed"),
])
def test_a_spec_that_carries_data_or_is_no_view_is_refused(spec: dict, expected: str) -> None:
    assert expected in _reason("visualizer", json.dumps(spec))


def test_a_non_json_spec_is_refused() -> None:
    assert _reason("visualizer", "I would draw a line chart of revenue.") == "the reply contains no JSON object"
