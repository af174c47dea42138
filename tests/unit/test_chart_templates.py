"""Charts from templates: only where the hint and the result's shape make the chart obvious, and always a spec
the same policy accepts as a model's."""

from __future__ import annotations

import pytest

from common.charts import bind_and_validate, chart_kind
from common.charts.templates import axis_title, template_spec

REGIONS = [{"name": "region", "dtype": "VARCHAR"}, {"name": "revenue_eur", "dtype": "DOUBLE"}]
REGION_ROWS = [{"region": "North", "revenue_eur": 250.0}, {"region": "South", "revenue_eur": 80.0}]
MONTHS = [{"name": "month", "dtype": "DATE"}, {"name": "orders", "dtype": "BIGINT"}]
MONTH_ROWS = [{"month": f"2024-{m:02d}-01", "orders": m * 10} for m in range(1, 13)]


def checked(spec, columns, rows):
    return bind_and_validate(spec, columns, rows, max_rows=1000, max_pixels=40_000_000)


def test_a_bar_hint_over_one_category_and_one_measure_is_a_sorted_bar_chart():
    spec = template_spec("bar", REGIONS, REGION_ROWS, title="Revenue by region, 2024")
    bound = checked(spec, REGIONS, REGION_ROWS)
    assert chart_kind(bound) == "bar" and bound["title"]["text"] == "Revenue by region, 2024"
    assert bound["encoding"]["x"]["field"] == "region" and bound["encoding"]["x"]["sort"] == "-y"
    assert bound["encoding"]["y"]["title"] == "Revenue (EUR)"
    assert bound["data"]["values"] == REGION_ROWS


def test_many_or_long_categories_turn_the_bars_on_their_side():
    rows = [{"region": f"Region number {n}", "revenue_eur": n} for n in range(10)]
    spec = checked(template_spec("bar", REGIONS, rows, title="t"), REGIONS, rows)
    assert spec["encoding"]["y"]["field"] == "region" and spec["encoding"]["y"]["sort"] == "-x"


def test_a_line_hint_over_dates_is_a_line_and_over_categories_goes_to_the_model():
    spec = checked(template_spec("line", MONTHS, MONTH_ROWS, title="Orders by month"), MONTHS, MONTH_ROWS)
    assert chart_kind(spec) == "line" and spec["encoding"]["x"]["type"] == "temporal"
    assert template_spec("line", REGIONS, REGION_ROWS, title="t") is None


def test_a_table_hint_lists_the_columns():
    spec = checked(template_spec("table", REGIONS, REGION_ROWS, title="Revenue"), REGIONS, REGION_ROWS)
    assert chart_kind(spec) == "table" and {"fold": ["region", "revenue_eur"]} in spec["transform"]


@pytest.mark.parametrize("hint,columns,rows", [
    ("auto", REGIONS, REGION_ROWS),  # the planner saw no standard chart that fits
    ("bar", [*REGIONS, {"name": "orders", "dtype": "BIGINT"}], REGION_ROWS),  # two measures
    ("bar", [{"name": "region", "dtype": "VARCHAR"}, {"name": "channel", "dtype": "VARCHAR"},
             {"name": "revenue", "dtype": "DOUBLE"}], REGION_ROWS),  # two dimensions
    ("bar", REGIONS, []),  # nothing to draw
    ("bar", REGIONS, [{"region": str(n), "revenue_eur": n} for n in range(41)]),  # too many bars to be obvious
    ("table", [{"name": f"c{n}", "dtype": "DOUBLE"} for n in range(7)], REGION_ROWS),  # too wide a table
])
def test_anything_less_obvious_goes_to_the_model(hint, columns, rows):
    assert template_spec(hint, columns, rows, title="t") is None


@pytest.mark.parametrize("column,title", [
    ("revenue_eur", "Revenue (EUR)"), ("share_pct", "Share (%)"), ("orders", "Orders"),
    ("avg_delivery_days", "Avg delivery (days)"), ("Revenue Squad", "Revenue Squad"), ("_", "_")])
def test_axis_titles_read_as_words_with_their_unit(column, title):
    assert axis_title(column) == title
