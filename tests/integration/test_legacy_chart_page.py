"""The chart page the original frontend shows in an iframe (``GET /charts/<namespace>/<id>.html``): it fills its
frame and, framed, shows no actions menu, which that frontend's PDF export would otherwise photograph."""

from __future__ import annotations

import json
import re

import pytest

from tests.chart_browser import drawn_in_frame, needs_chromium

FRONTEND_QUERY = {"domain": "Campaign", "prompt": "Compare revenue by region", "session_id": "1732100000001",
                  "includeInsight": True, "provider": "SCRIPTED", "model": "scripted/model", "userId": "alice"}


@pytest.fixture
def chart_page(pipeline, analyst):
    pipeline.upload("campaign")
    chart_url = pipeline.call("POST", "/query", json=FRONTEND_QUERY).get_json()["chart_url"]
    response = pipeline.call("GET", chart_url, user="")
    assert response.status_code == 200 and response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_the_legacy_chart_page_is_drawn_as_wide_as_its_frame(chart_page):
    spec = json.loads(re.search(r'vegaEmbed\("#chart", (.*), options\)', chart_page, flags=re.DOTALL).group(1))
    assert spec["width"] == "container" and spec["autosize"]["type"] == "fit-x"
    assert spec["height"] >= 200 and spec["title"] == "Revenue by region"
    assert "<title>Revenue by region</title>" in chart_page
    # Framed, the page turns vega-embed's actions menu off (the browser test below watches it happen).
    assert "if (window.self !== window.top) { options.actions = false; }" in chart_page


@needs_chromium
def test_framed_at_1024_px_the_chart_fills_the_frame_and_shows_no_actions(chart_page, tmp_path):
    drawn = drawn_in_frame(chart_page, tmp_path, width=1024)
    assert drawn["width"] >= 1000 and drawn["actions"] == 0, drawn  # it used to be ~160 px with a menu button
