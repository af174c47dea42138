"""Sized charts as they are delivered: the PNG (which the session PDF embeds) at least 400 px wide, every kind of
composition still drawn, and the HTML page as wide as its frame, titled with the chart's title, with no actions
menu when framed. Renders run vl-convert for real (tens of milliseconds each); the frame checks run headless
Chromium when it is installed."""

from __future__ import annotations

import datetime as dt
import json
import re
import struct

import pytest

from common.charts import render
from common.charts.sizing import PAGE_AUTOSIZE, page_spec
from common.charts.spec import bind_and_validate
from common.charts.templates import template_spec
from tests.chart_browser import actions_when_alone, drawn_in_frame, needs_chromium
from tests.unit.charts.test_chart_policy import COLUMNS as POLICY_COLUMNS
from tests.unit.charts.test_chart_policy import LEGITIMATE
from tests.unit.charts.test_chart_policy import ROWS as POLICY_ROWS

REGIONS = [{"name": "region", "dtype": "VARCHAR"}, {"name": "sales", "dtype": "DOUBLE"}]
TWO = [{"region": "North", "sales": 250.0}, {"region": "South", "sales": 80.0}]
DAYS = [{"name": "day", "dtype": "DATE"}, {"name": "orders", "dtype": "BIGINT"}]
GROUPS = [{"name": "region", "dtype": "VARCHAR"}, {"name": "channel", "dtype": "VARCHAR"},
          {"name": "sales", "dtype": "DOUBLE"}]
BAR = {"mark": "bar", "title": {"text": "Sales by region", "subtitle": "2024"},
       "encoding": {"x": {"field": "region", "type": "nominal"}, "y": {"field": "sales", "type": "quantitative"}}}


def chart(name):
    """The five charts the issue names, bound and sized as the pipeline does."""
    if name == "two bars":
        return bind_and_validate(BAR, REGIONS, TWO, max_rows=1000)
    if name == "40 long labels":
        rows = [{"region": f"Sales territory number {n} (metro)", "sales": float(n)} for n in range(40)]
        return bind_and_validate(BAR, REGIONS, rows, max_rows=1000)
    if name == "300-day line":
        rows = [{"day": (dt.date(2024, 1, 1) + dt.timedelta(days=n)).isoformat(), "orders": n % 40 + n // 3}
                for n in range(300)]
        return bind_and_validate(template_spec("line", DAYS, rows, title="Orders per day"), DAYS, rows, max_rows=1000)
    if name == "designed layer":
        rows = [{"region": r, "sales": float(v)} for r, v in (("North", 250), ("South", 80), ("East", 120))]
        return bind_and_validate({"title": "Revenue", "encoding": BAR["encoding"], "layer": [
            {"mark": "bar"}, {"mark": {"type": "text", "dy": -5}, "encoding": {"text": {"field": "sales"}}}]},
            REGIONS, rows, max_rows=1000)
    rows = [{"region": r, "channel": c, "sales": float(len(r) * len(c))}
            for r in ("North", "South", "East", "West", "Central") for c in ("Online", "Retail", "Wholesale")]
    return bind_and_validate({"mark": "bar", "encoding": {
        **BAR["encoding"], "xOffset": {"field": "channel"}, "color": {"field": "channel", "type": "nominal"}}},
        GROUPS, rows, max_rows=1000)


def png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


@pytest.mark.parametrize("name", ["two bars", "40 long labels", "300-day line", "designed layer", "grouped bars"])
def test_the_png_is_at_least_400_px_wide(name):
    width, _ = png_size(render.render_png(chart(name), scale=1))
    assert width >= 400, width  # a two-bar chart used to be 118 px wide


COMPOSITIONS = {
    **{f"policy: {name}": spec for name, spec in LEGITIMATE.items()},
    "hconcat": {"hconcat": [LEGITIMATE["prompt-style bar"], LEGITIMATE["monthly line with points"]]},
    "vconcat of a layer": {"vconcat": [LEGITIMATE["bars with text labels"], LEGITIMATE["histogram"]]},
    "repeat": {"repeat": ["sales"], "spec": {"mark": "bar", "encoding": {
        "x": {"field": "region", "type": "nominal"}, "y": {"field": {"repeat": "repeat"}, "type": "quantitative",
                                                           "aggregate": "sum"}}}},
    "row facet channel": {"mark": "bar", "encoding": {"x": {"field": "product"}, "y": {"field": "sales"},
                                                      "row": {"field": "region"}}},
}


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_every_kind_of_chart_still_renders_once_sized(name):
    spec = bind_and_validate(COMPOSITIONS[name], POLICY_COLUMNS, POLICY_ROWS, max_rows=1000)
    svg = render.render_svg(spec)
    size = re.search(r'<svg[^>]*\bwidth="([\d.]+)"', svg)
    assert size is not None and float(size.group(1)) >= 200


def test_the_page_draws_one_view_as_wide_as_its_frame_and_compositions_at_their_size():
    single = chart("designed layer")
    assert page_spec(single) == {**single, "width": "container", "autosize": PAGE_AUTOSIZE}
    faceted = bind_and_validate(LEGITIMATE["small multiples"], POLICY_COLUMNS, POLICY_ROWS, max_rows=1000)
    assert page_spec(faceted) == faceted  # Vega-Lite fits only single views and layers to a container
    page = render.render_html(single)
    drawn = json.loads(re.search(r'vegaEmbed\("#chart", (.*), options\)', page, flags=re.DOTALL).group(1))
    assert drawn["width"] == "container" and drawn["autosize"]["type"] == "fit-x"
    assert "#chart { width: 100%;" in page


@pytest.mark.parametrize("title,given,expected", [
    ({"text": "Revenue by region", "subtitle": "2024"}, "What was our revenue?", "Revenue by region"),
    ({"text": ["Revenue", "by region"]}, "What was our revenue?", "Revenue by region"),
    ("Orders <by> day", "q", "Orders &lt;by&gt; day"),
    (None, "What was our revenue?", "What was our revenue?"),
])
def test_the_page_title_is_the_charts_own(title, given, expected):
    spec = dict(chart("two bars"), title=title) if title is not None else \
        {key: value for key, value in chart("two bars").items() if key != "title"}
    assert f"<title>{expected}</title>" in render.render_html(spec, title=given)


@needs_chromium
def test_a_framed_page_fills_its_frame_without_an_actions_menu(tmp_path):
    page = render.render_html(chart("two bars"), title="the question")
    framed = drawn_in_frame(page, tmp_path, width=1024)
    assert framed["width"] >= 1000 and framed["actions"] == 0, framed
    assert framed["title"] == "Sales by region"
    narrow = drawn_in_frame(page, tmp_path, width=500)
    assert 480 <= narrow["width"] <= 500, narrow
    assert actions_when_alone(page, tmp_path) == 1  # opened on its own, the export menu stays
