"""Rendering runs vl-convert for real, offline. Each render costs tens of milliseconds (the first about a second),
so this module renders a handful of times."""

import json
import re

import pytest

from common.charts import render
from common.charts.sizing import page_spec
from common.charts.spec import ChartSpecError, bind_and_validate

COLUMNS = [{"name": "region", "dtype": "str"}, {"name": "sales", "dtype": "int"}]
HOSTILE = "</script><script>alert(1)</script><!--"
ROWS = [{"region": HOSTILE, "sales": 3}, {"region": "north\u2028", "sales": 5}]


@pytest.fixture(scope="module")
def spec():
    return bind_and_validate({"mark": "bar", "title": HOSTILE,
                              "encoding": {"x": {"field": "region", "type": "nominal"},
                                           "y": {"field": "sales", "type": "quantitative"}}},
                             COLUMNS, ROWS, max_rows=100)


@pytest.fixture(scope="module")
def page(spec):
    return render.render_html(spec, title=HOSTILE)


def test_the_html_is_a_complete_document_that_needs_no_network(page):
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<body>" in page and "</head>" in page
    assert not re.search(r"<script[^>]*\bsrc=", page, flags=re.IGNORECASE)
    assert not re.search(r"<link[^>]*\bhref=", page, flags=re.IGNORECASE)
    assert "window.vegaEmbed" in page  # Vega, Vega-Lite and vega-embed are inlined
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page


def test_strings_in_the_spec_cannot_end_the_script(page, spec):
    # Exactly the two scripts of the template: the bundle and the call; the hostile text opened none.
    assert len(re.findall(r"<script\b", page, flags=re.IGNORECASE)) == 2
    assert HOSTILE not in page
    call = re.search(r'vegaEmbed\("#chart", (.*), options\)', page, flags=re.DOTALL)
    assert call is not None
    assert json.loads(call.group(1)) == page_spec(spec)  # the escapes still read back as the same spec
    assert "<title>&lt;/script&gt;" in page


def test_png_and_svg_are_rendered(spec):
    png = render.render_png(spec, scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    svg = render.render_svg(spec)
    assert svg.startswith("<svg") and "&lt;/script&gt;" in svg


def test_a_spec_vega_lite_cannot_compile_is_a_chart_spec_error():
    with pytest.raises(ChartSpecError, match=r"could not be rendered: .*Unexpected token"):
        render.render_svg({"mark": "bar", "data": {"values": [{"a": 1}]},
                           "transform": [{"calculate": "datum.a +* 2", "as": "b"}]})


def test_the_renderer_reads_no_url_even_if_a_spec_names_one():
    with pytest.raises(ChartSpecError, match="not allowed"):
        render.render_svg({"mark": "bar", "data": {"url": "http://127.0.0.1:9/data.csv"},
                           "encoding": {"x": {"field": "a", "type": "nominal"}}})


def test_an_image_too_large_to_rasterise_is_refused(spec):
    with pytest.raises(ChartSpecError, match="too large"):
        render.render_png({**spec, "width": 100_000, "height": 20_000})


def test_script_json_escapes_what_could_close_a_script():
    text = render.script_json({"a": "</script><!--&\u2028\u2029"})
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == {"a": "</script><!--&\u2028\u2029"}
