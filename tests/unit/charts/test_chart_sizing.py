"""Charts sized for the reader: every chart, a template's or the visualizer's, gets pixel sizes from its mark,
encodings and rows after the policy; labels turn only when they would overlap; and no data or model-given size
can make a chart larger than the render budget."""

from __future__ import annotations

import datetime as dt

import pytest

from common.charts import view_size
from common.charts.policy import check_cost, view_pixels
from common.charts.sizing import RENDER_BUDGET, WRAP_COLUMNS
from common.charts.spec import bind_and_validate
from common.charts.templates import template_spec

REGIONS = [{"name": "region", "dtype": "VARCHAR"}, {"name": "sales", "dtype": "DOUBLE"}]
TWO = [{"region": "North", "sales": 250.0}, {"region": "South", "sales": 80.0}]
GROUPS = [{"name": "region", "dtype": "VARCHAR"}, {"name": "channel", "dtype": "VARCHAR"},
          {"name": "sales", "dtype": "DOUBLE"}]
X = {"field": "region", "type": "nominal"}
Y = {"field": "sales", "type": "quantitative"}


def bar(**extra):
    return {"mark": "bar", "title": {"text": "Sales by region"}, "encoding": {"x": X, "y": Y}, **extra}


def bind(spec, columns=REGIONS, rows=TWO, **limits):
    return bind_and_validate(spec, columns, rows, max_rows=100_000, **limits)


def territories(count, label="Sales territory number {} (metro)"):
    return [{"region": label.format(n), "sales": float(count - n)} for n in range(count)]


def x_axis(spec):
    return spec["encoding"]["x"].get("axis", {})


def test_a_model_spec_with_no_size_gets_the_readers_size():
    sized = bind(bar())
    assert (sized["width"], sized["height"]) == (view_size.WIDTH, view_size.HEIGHT)
    assert x_axis(sized)["labelAngle"] == 0  # "North" and "South" fit side by side
    assert sized["title"] == {"text": "Sales by region"}


def test_templates_are_sized_by_the_same_step():
    template = bind(template_spec("bar", REGIONS, TWO, title="Sales by region"))
    assert (template["width"], template["height"]) == (view_size.WIDTH, view_size.HEIGHT)
    rows = territories(40)
    sideways = bind(template_spec("bar", REGIONS, rows, title="t"), rows=rows)
    assert sideways["encoding"]["y"]["field"] == "region"
    assert sideways["height"] == 40 * view_size.BAR_STEP and sideways["width"] == view_size.WIDTH
    assert sideways["encoding"]["y"]["axis"]["labelLimit"] == view_size.SIDE_LABEL_LIMIT


def test_many_categories_get_a_step_each_and_turned_cut_labels():
    rows = territories(40)
    sized = bind(bar(), rows=rows)
    assert sized["width"] == 40 * view_size.BAR_STEP
    assert x_axis(sized)["labelAngle"] == view_size.LABEL_ANGLE
    assert x_axis(sized)["labelLimit"] == view_size.LABEL_LIMIT


@pytest.mark.parametrize("labels,angle", [
    (["North", "South", "East", "West"], 0),
    ([f"Region number {n}" for n in range(4)], view_size.LABEL_ANGLE),  # 64 characters: too many upright
    (["N", "Southern and Western Provinces and Islands"], view_size.LABEL_ANGLE),  # one label wider than its step
])
def test_labels_turn_when_they_would_overlap_upright(labels, angle):
    rows = [{"region": label, "sales": 1.0} for label in labels]
    assert x_axis(bind(bar(), rows=rows))["labelAngle"] == angle


def test_the_models_own_turned_labels_are_kept():
    spec = bar(encoding={"x": {**X, "axis": {"labelAngle": -90}}, "y": Y})
    assert x_axis(bind(spec, rows=territories(20)))["labelAngle"] == -90


def test_a_time_series_is_wider_the_more_points_it_has():
    columns = [{"name": "day", "dtype": "DATE"}, {"name": "orders", "dtype": "BIGINT"}]
    rows = [{"day": (dt.date(2024, 1, 1) + dt.timedelta(days=n)).isoformat(), "orders": n} for n in range(300)]
    line = bind(template_spec("line", columns, rows, title="Orders per day"), columns, rows)
    assert line["width"] == 300 * view_size.POINT_STEP > view_size.LINE_WIDTH
    few = bind(template_spec("line", columns, rows[:12], title="t"), columns, rows[:12])
    assert few["width"] == view_size.LINE_WIDTH
    days = [{"day": (dt.date(2024, 1, 1) + dt.timedelta(days=n)).isoformat(), "orders": n} for n in range(900)]
    monthly = bind({"mark": "bar", "encoding": {"x": {"field": "day", "timeUnit": "yearmonth", "type": "ordinal"},
                                                "y": {"field": "orders", "aggregate": "sum"}}}, columns, days)
    assert monthly["width"] == 30 * view_size.BAR_STEP  # a bar a month, not a bar a day


def test_grouped_bars_widen_their_category():
    rows = [{"region": f"R{r}", "channel": c, "sales": 1.0} for r in range(12) for c in ("On", "Off", "Shop")]
    spec = bar(encoding={"x": X, "xOffset": {"field": "channel"}, "y": Y, "color": {"field": "channel"}})
    assert bind(spec, GROUPS, rows)["width"] == 12 * 3 * view_size.OFFSET_STEP


def test_a_table_gets_a_row_step_and_a_column_step():
    columns = [*REGIONS, {"name": "plan", "dtype": "VARCHAR"}]
    rows = [{"region": f"R{n}", "sales": float(n), "plan": "Grow"} for n in range(100)]
    table = bind(template_spec("table", columns, rows, title="Plan"), columns, rows)
    assert table["height"] == 30 * view_size.ROW_STEP  # the template shows 30 of the 100 rows
    assert table["width"] == 3 * view_size.TABLE_COLUMN_STEP


def test_sizes_the_model_gives_are_replaced():
    for given in ({"width": 9000, "height": 400}, {"width": {"step": 200}, "height": 10},
                  {"width": "container", "autosize": {"type": "none"}}):
        sized = bind(bar(**given))
        assert (sized["width"], sized["height"]) == (view_size.WIDTH, view_size.HEIGHT)
        assert "autosize" not in sized


def test_sizes_stay_bounded_whatever_the_data_or_the_model_says():
    rows = [{"region": f"region {n} " + "x" * (n % 300), "channel": f"c{n % 50}", "sales": float(n)}
            for n in range(10_000)]
    hostile = {  # sizes the policy lets through (it refuses larger ones); the sizing replaces them
        "stepped": bar(width={"step": 200}, height={"step": 200}),
        "sideways": {"mark": "bar", "encoding": {"y": X, "x": Y}},
        "heat map": {"mark": "rect", "encoding": {"x": X, "y": {"field": "channel", "type": "nominal"}}},
        "fifty facets": {"facet": {"field": "channel"}, "spec": bar(width=1000, height=60)},
        "concatenated": {"hconcat": [bar(width=5000, height=10), bar(), bar()]},
    }
    for name, spec in hostile.items():
        for max_pixels in (4_000_000, 50_000):
            if max_pixels < 4_000_000:  # a small budget: only the data is hostile
                spec = _without_sizes(spec)
            sized = bind(spec, GROUPS, rows, max_pixels=max_pixels)
            view = {key: value for key, value in sized.items() if key != "data"}
            pixels = view_pixels(view, ["region", "channel", "sales"], rows)
            assert 0 < pixels <= min(max_pixels, RENDER_BUDGET), name
            check_cost(view, ["region", "channel", "sales"], rows, max_pixels=max_pixels)  # the policy agrees
            for node in _views(view):
                assert node.get("width", 0) <= view_size.MAX_WIDTH and node.get("height", 0) <= view_size.MAX_HEIGHT


def test_labels_too_dense_to_read_are_not_drawn():
    sized = bind(bar(), rows=territories(1000))
    assert sized["width"] == view_size.MAX_WIDTH
    assert x_axis(sized)["labels"] is False  # 1.6 px a bar; drawing 1,000 cut labels takes seconds


def test_facets_wrap_and_cells_are_smaller():
    rows = [{"region": f"R{r}", "channel": f"C{c}", "sales": 1.0} for r in range(4) for c in range(6)]
    sized = bind({"facet": {"field": "channel", "type": "nominal"}, "spec": bar(width=900)}, GROUPS, rows)
    assert sized["columns"] == WRAP_COLUMNS and "width" not in sized
    assert (sized["spec"]["width"], sized["spec"]["height"]) == (view_size.CELL_WIDTH, view_size.CELL_HEIGHT)
    by_channel = bind(bar(encoding={"x": X, "y": Y, "facet": {"field": "channel"}}), GROUPS, rows)
    assert by_channel["encoding"]["facet"]["columns"] == WRAP_COLUMNS
    stacked = bind({"vconcat": [bar(), bar()]})
    assert all(view["width"] == view_size.WIDTH for view in stacked["vconcat"])


def test_a_layer_is_sized_once_by_its_drawn_marks():
    spec = {"encoding": {"x": X, "y": Y}, "layer": [
        {"mark": {"type": "text", "dy": -4}, "encoding": {"text": {"field": "sales"}}, "width": 50},
        {"mark": "bar", "width": 3000}]}
    sized = bind(spec, rows=territories(30))
    assert sized["width"] == 30 * view_size.BAR_STEP and sized["height"] == view_size.HEIGHT
    assert all("width" not in child for child in sized["layer"])


def _views(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _views(value)
    elif isinstance(node, list):
        for item in node:
            yield from _views(item)


def _without_sizes(node):
    if isinstance(node, dict):
        return {key: _without_sizes(value) for key, value in node.items() if key not in ("width", "height")}
    return [_without_sizes(item) for item in node] if isinstance(node, list) else node
