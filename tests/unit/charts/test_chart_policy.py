"""The chart-spec cost policy: a hostile spec that would make the renderer build millions of rows, bins, ticks or
pixels is refused with CHART_TOO_EXPENSIVE before anything renders; the charts the visualizer is asked for pass."""

from __future__ import annotations

import pytest

from common.charts.spec import ChartSpecError, ChartTooExpensive, bind_and_validate
from common.errors import BadRequest

COLUMNS = [{"name": "region", "dtype": "str"}, {"name": "sales", "dtype": "float"},
           {"name": "month", "dtype": "date"}, {"name": "product", "dtype": "str"}]
ROWS = [{"region": ["North", "South", "East"][i % 3], "sales": float(i), "month": f"2025-{i % 12 + 1:02d}-01",
         "product": f"p{i}"} for i in range(60)]
X = {"field": "region", "type": "nominal"}
Y = {"field": "sales", "type": "quantitative"}


def bar(**extra):
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"name": "result"},
            "mark": "bar", "encoding": {"x": X, "y": Y}, **extra}


def bind(spec, rows=ROWS, columns=COLUMNS, **limits):
    return bind_and_validate(spec, columns, rows, max_rows=limits.pop("max_rows", 10_000), **limits)


def refused(spec, *fragments, rows=ROWS, columns=COLUMNS, **limits):
    with pytest.raises(ChartTooExpensive) as caught:
        bind(spec, rows, columns, **limits)
    error = caught.value
    assert error.code == "CHART_TOO_EXPENSIVE" and isinstance(error, BadRequest) and error.status == 400
    for fragment in fragments:
        assert fragment in error.message, error.message
    return error


LEGITIMATE = {
    "prompt-style bar": bar(
        title={"text": "Sales by region (2025)", "subtitle": "All products"},
        encoding={"x": {**X, "sort": "-y", "axis": {"labelAngle": -45, "labelLimit": 120}},
                  "y": {**Y, "aggregate": "sum", "title": "Sales (USD)", "axis": {"format": ",.3~s"}},
                  "color": {**X, "scale": {"scheme": {"name": "blues", "extent": [0.25, 1]}},
                            "legend": {"orient": "bottom"}},
                  "tooltip": [{**X, "title": "Region"}, {**Y, "title": "Sales", "format": ",.0f"}]}),
    "monthly line with points": {"mark": {"type": "line", "point": True}, "encoding": {
        "x": {"field": "month", "type": "temporal", "timeUnit": "yearmonth", "axis": {"format": "%b %Y"}},
        "y": {**Y, "aggregate": "sum"}}},
    "bars with text labels": {"layer": [
        {"mark": "bar", "encoding": {"x": X, "y": {**Y, "aggregate": "sum"}}},
        {"mark": {"type": "text", "dy": -4}, "encoding": {"x": X, "y": {**Y, "aggregate": "sum"},
                                                          "text": {**Y, "aggregate": "sum", "format": ",.1f"}}}]},
    "text table": {"transform": [{"window": [{"op": "row_number", "as": "row"}]},
                                 {"fold": ["region", "sales", "month"]}],
                   "mark": "text", "encoding": {"y": {"field": "row", "type": "ordinal", "axis": None},
                                                "x": {"field": "key", "type": "nominal", "axis": {"orient": "top"}},
                                                "text": {"field": "value"}}},
    "grouped bars": bar(encoding={"x": X, "xOffset": {"field": "product"}, "y": Y,
                                  "color": {"field": "product"}}),
    "histogram": {"mark": "bar", "encoding": {"x": {**Y, "bin": {"maxbins": 20}},
                                              "y": {"aggregate": "count", "type": "quantitative"}}},
    "running total and moving median": {"transform": [
        {"window": [{"op": "sum", "field": "sales", "as": "total"}], "frame": [None, 0], "sort": [{"field": "month"}]},
        {"window": [{"op": "median", "field": "sales", "as": "median"}], "frame": [-3, 3]}],
        "mark": "line", "encoding": {"x": {"field": "month", "type": "temporal"},
                                     "y": {"field": "total", "type": "quantitative"}}},
    "trend lines": {"layer": [
        {"mark": "point", "encoding": {"x": {**Y}, "y": {**Y}}},
        {"mark": "line", "transform": [{"regression": "sales", "on": "sales"}], "encoding": {"x": Y, "y": Y}},
        {"mark": "line", "transform": [{"loess": "sales", "on": "sales", "bandwidth": 0.5}],
         "encoding": {"x": Y, "y": Y}}]},
    "small multiples": {"facet": {"field": "region", "type": "nominal"}, "columns": 3,
                        "spec": {"mark": "bar", "encoding": {"x": {"field": "product"}, "y": Y}}},
    "sized and interactive": bar(
        width="container", height=300, autosize={"type": "fit", "contains": "padding"},
        params=[{"name": "brush", "select": {"type": "interval", "encodings": ["x"]}},
                {"name": "cut", "value": 5, "bind": {"input": "range", "min": 0, "max": 50, "step": 0.5}}],
        transform=[{"filter": "datum.sales > cut && isValid(datum.region)"},
                   {"calculate": "format(datum.sales, ',.1f') + ' units, ' + timeFormat(toDate(datum.month), '%b')",
                    "as": "label"}],
        encoding={"x": {**X, "axis": {"labelExpr": "upper(slice(datum.label, 0, 3))"}}, "y": Y,
                  "color": {"condition": {"test": {"and": ["datum.sales > 4", {"param": "brush"}]}, "value": "red"},
                            "value": "grey"}},
        config={"view": {"stroke": None}, "axis": {"labelFontSize": 11, "tickCount": 8}}),
    "stepped width": bar(width={"step": 30}),
    "imputed lines": {"mark": "line", "encoding": {"x": {"field": "month", "type": "temporal"},
                                                   "y": {**Y, "impute": {"value": 0}}, "color": X}},
    "stacked and pivoted": {"transform": [{"pivot": "region", "value": "sales", "groupby": ["month"], "limit": 10},
                                          {"stack": "North", "groupby": ["month"], "as": ["lo", "hi"]}],
                            "mark": "bar", "encoding": {"x": {"field": "month"}, "y": {"field": "lo"},
                                                        "y2": {"field": "hi"}}},
}


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_the_charts_the_visualizer_writes_pass(name):
    bound = bind(LEGITIMATE[name])
    assert bound["data"]["values"] == ROWS


SEQUENCE_ROWS = [{"calculate": "sequence(0, 1000000)", "as": "s"}, {"flatten": ["s"]}]


@pytest.mark.parametrize("spec,fragments", [
    (bar(transform=SEQUENCE_ROWS), ["sequence()"]),
    (bar(transform=[{"flatten": ["region"]}]), ["'flatten' transform is not allowed"]),
    (bar(transform=[{"filter": "length(sequence(0, 1e9)) > 0"}]), ["sequence()"]),
    (bar(transform=[{"filter": {"not": "length(sequence(0, 1e9)) > 0"}}]), ["sequence()"]),
    (bar(transform=[{"calculate": "pad(datum.region, 1e9)", "as": "p"}]), ["pad()"]),
    (bar(transform=[{"calculate": "split(datum.region, '')", "as": "p"}]), ["split()"]),
    (bar(transform=[{"calculate": "timeSequence('millisecond', 0, now())", "as": "t"}]), ["timeSequence()"]),
    (bar(transform=[{"filter": "test(regexp('(a+)+$'), datum.region)"}]), ["test()"]),
    (bar(transform=[{"calculate": "regexp('(a+)+$')", "as": "r"}]), ["regexp()"]),
    (bar(transform=[{"filter": "test(/(a+)+$/, datum.region)"}]), ["regular expressions"]),
    (bar(transform=[{"calculate": "datum.region.repeat(1e9)", "as": "r"}]), ["method calls"]),
    (bar(transform=[{"calculate": "format(datum.sales, '1000000000d')", "as": "f"}]), ["format"]),
    (bar(transform=[{"calculate": "format(datum.sales, datum.region)", "as": "f"}]), ["string literal"]),
    (bar(transform=[{"calculate": "datum.sales" + " + 1" * 400, "as": "f"}]), ["characters; at most 1000"]),
    (bar(params=[{"name": "p", "expr": "sequence(0, 1e8)"}]), ["spec.params[0].expr", "sequence()"]),
    (bar(encoding={"x": {**X, "axis": {"labelExpr": "join(sequence(0, 1e6), ',')"}}, "y": Y}), ["labelExpr"]),
    (bar(encoding={"x": X, "y": {**Y, "axis": {"format": "09999999999d"}}}), ["spec.encoding.y.axis.format"]),
    (bar(transform=[{"impute": "sales", "key": "month", "keyvals": {"start": 0, "stop": 1e9, "step": 1}}]),
     ["keyvals"]),
    (bar(encoding={"x": X, "y": {**Y, "impute": {"keyvals": {"start": 0, "stop": 1e9}}}}), ["keyvals"]),
    (bar(transform=[{"impute": "sales", "key": "month", "keyvals": list(range(101))}]), ["keyvals"]),
    (bar(transform=[{"bin": {"maxbins": 1000000}, "field": "sales", "as": "b"}]), ["maxbins"]),
    (bar(encoding={"x": {**Y, "bin": {"maxbins": 1000000}}, "y": Y}), ["spec.encoding.x.bin.maxbins"]),
    (bar(encoding={"x": {**Y, "bin": {"step": 1e-9}}, "y": Y}), ["step may not be set"]),
    (bar(encoding={"x": {**Y, "bin": {"base": 1.0000001}}, "y": Y}), ["base may not be set"]),
    (bar(transform=[{"fold": ["sales"] * 3}]), ["lists a field twice"]),
    (bar(transform=[{"density": "sales"}]), ["'density' transform is not allowed"]),
    (bar(transform=[{"density": "sales", "steps": 10000000}]), ["'density'"]),
    (bar(transform=[{"quantile": "sales", "step": 1e-9}]), ["'quantile'"]),
    (bar(transform=[{"extent": "sales", "param": "e"}]), ["'extent'"]),
    (bar(transform=[{"sequence": {"start": 0, "stop": 1e9}}]), ["'sequence'"]),
    (bar(transform=[{"regression": "sales", "on": "sales", "method": "poly", "order": 1000000}]), ["order"]),
    (bar(transform=[{"loess": "sales", "on": "sales", "bandwidth": 50}]), ["bandwidth"]),
    (bar(transform=[{"window": [{"op": "values", "field": "sales", "as": "v"}], "frame": [None, 0]}]),
     ["op values"]),
    (bar(transform=[{"window": [{"op": "median", "field": "sales", "as": "m"}], "frame": [None, None]}]),
     ["median in a window needs a frame"]),
    (bar(transform=[{"window": [{"op": "sum", "field": "sales", "as": "s"}], "frame": [-10000000, 0]}]),
     ["frame must be"]),
    (bar(encoding={"x": X, "y": {**Y, "impute": {"method": "mean", "frame": [-10000000, 10000000]}}}),
     ["spec.encoding.y.impute.frame"]),
    (bar(transform=[{"calculate": "datum.sales * 2", "as": f"c{i}"} for i in range(31)]), ["at most 30 transforms"]),
    (bar(encoding={"x": {**X, "axis": {"values": list(range(1001))}}, "y": Y}), ["1001 values"]),
    (bar(transform=[{"filter": {"field": "sales", "oneOf": list(range(1001))}}]), ["1001 values"]),
    (bar(transform=[{"lookup": "region", "from": {"key": "region", "fields": ["sales"]}}]), ["may only name a param"]),
    (bar(transform=[{"pivot": "product", "value": "sales"}]), ["limit must be set"]),
    (bar(transform=[{"filter": "true", "as": "x"}]), ["not a parameter"]),
    (bar(padding=1000000), ["spec.padding"]),
    (bar(config={"view": {"continuousWidth": 1000000}}), ["spec.config.view.continuousWidth"]),
    (bar(config={"axis": {"tickCount": 1000000}}), ["spec.config.axis.tickCount"]),
    (bar(encoding={"x": {"field": "month", "type": "temporal",
                         "axis": {"tickCount": {"interval": "millisecond", "step": 1}}}, "y": Y}), ["tickCount"]),
    (bar(encoding={"x": X, "y": Y, "color": {**Y, "scale": {"type": "bin-ordinal", "bins": {"step": 1e-9}}}}),
     ["bins"]),
    (bar(encoding={"x": X, "y": Y, "color": {**Y, "scale": {"scheme": {"name": "blues", "count": 10000000}}}}),
     ["count"]),
    (bar(encoding={"x": {**X, "timeUnit": {"unit": "milliseconds", "step": 0.000001}}, "y": Y}), ["step"]),
    (bar(mark={"type": "line", "strokeDash": [0.0001, 0.0001]}), ["dash pattern"]),
    (bar(params=[{"name": f"p{i}", "value": i} for i in range(21)]), ["at most 20 params"]),
    (bar(data={"url": "https://example.com/huge.csv"}), ["data must be exactly"]),
    (bar(data={"sequence": {"start": 0, "stop": 1e9, "as": "region"}}), ["data must be exactly"]),
    (bar(data={"sphere": True}), ["data must be exactly"]),
    (bar(data={"graticule": {"step": [0.001, 0.001]}}), ["data must be exactly"]),
    ({"layer": [bar(), {"layer": [bar(), {"layer": [bar(), {"layer": [bar()]}]}]}]}, ["nested more than 3"]),
    ({"layer": [bar()] * 11}, ["at most 10"]),
    ({"hconcat": [bar()] * 51}, ["at most 50"]),
    ({"repeat": ["sales"] * 60, "spec": bar()}, ["repeat makes 60 views"]),
    ({"vconcat": [{"repeat": ["sales"] * 8, "spec": bar()}] * 8}, ["64 panels"]),
    ({"facet": {"field": "product"}, "spec": bar()}, ["60 panels"]),
    (bar(encoding={"x": X, "y": Y, "row": {"field": "product"}}), ["60 panels"]),
])
def test_specs_that_expand_are_refused_before_rendering(spec, fragments):
    refused(spec, *fragments)


def test_a_fold_that_multiplies_the_rows_past_the_budget_is_refused():
    rows = [{"region": f"r{i}", "sales": i, "month": "2025-01-01", "product": "p"} for i in range(10_000)]
    window, _ = LEGITIMATE["text table"]["transform"]
    table = {**LEGITIMATE["text table"], "transform": [window, {"fold": ["region", "sales", "month", "product"]}]}
    assert bind(table, rows=rows)  # 10,000 rows x 4 fields: 40,000 marks
    refused({"layer": [table, table]}, "up to 80000 marks", "at most 50000", rows=rows)


def test_imputing_every_key_in_every_group_is_bounded_by_the_distinct_values():
    rows = [{"region": f"r{i}", "sales": i, "month": f"m{i}", "product": "p"} for i in range(400)]
    spec = {"mark": "line", "transform": [{"impute": "sales", "key": "month", "groupby": ["region"]}],
            "encoding": {"x": {"field": "month"}, "y": Y, "color": X}}
    refused(spec, "160000 marks", rows=rows)  # 400 months x 400 regions
    assert bind(spec, rows=rows[:100])  # 100 x 100 is a chart


@pytest.mark.parametrize("size", [
    {"width": 1000000}, {"height": 3000, "width": 3000}, {"width": {"expr": "1e9"}}, {"width": {"step": 100000}},
    {"autosize": {"type": "fit", "contains": "padding", "resize": True, "extra": 1}},
])
def test_a_models_size_is_replaced_by_the_servers_not_refused(size):
    # Issue 10: the server sizes every chart, so a size the model wrote is no reason to refuse the chart (and to
    # pay for another visualizer call); what is drawn is the server's size, within the render budget.
    sized = bind(bar(**size))
    assert sized["width"] == 420 and sized["height"] == 300 and "autosize" not in sized


def test_the_pixel_limit_is_the_setting():
    small = bind(bar(width=200, height=100), max_pixels=10_000)
    assert small["width"] * small["height"] <= 10_000  # the server's sizes shrink to fit the setting
    assert bind(bar(width=200, height=100), max_pixels=200_000)["width"] == 420


def test_data_beyond_max_rows_is_not_bound():
    assert len(bind(bar(), max_rows=7)["data"]["values"]) == 7


@pytest.mark.parametrize("spec", [
    bar(encoding={"x": {**X, "axis": {"labelExpr": "window.location.href"}}, "y": Y}),
    bar(transform=[{"filter": {"not": "document.cookie"}}]),
    bar(transform=[{"filter": {"or": ["datum.sales > 1", "fetch('https://evil.test')"]}}]),
])
def test_label_expressions_and_predicate_members_get_the_same_name_check_as_other_expressions(spec):
    with pytest.raises(ChartSpecError, match="may not use"):
        bind(spec)


def test_nan_and_infinite_values_are_bound_as_nulls_so_the_page_renders():
    from common.charts.render import render_html

    spec = {"mark": "bar", "encoding": {"x": {"field": "region", "type": "nominal"},
                                         "y": {"field": "share", "type": "quantitative"}}}
    rows = [{"region": "North", "share": float("nan")}, {"region": "South", "share": float("inf")},
            {"region": "East", "share": 0.5}]
    bound = bind_and_validate(spec, [{"name": "region"}, {"name": "share"}], rows, max_rows=10)
    assert [row["share"] for row in bound["data"]["values"]] == [None, None, 0.5]
    assert "<html" in render_html(bound).lower()
