"""The answer: safe HTML from Markdown, and numbers traced to the result table."""

from common.analysis.answer import frontend_html, markdown_to_html, numbers_in, unverified_numbers

ROWS = [{"region": "North", "revenue": 1250.0}, {"region": "South", "revenue": 750.0}]


def test_markdown_becomes_allowed_html_only():
    html = markdown_to_html("**Bottom line:** North leads.\n\n| region | revenue |\n|---|---|\n| North | 1,250 |\n\n"
                            "<script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)")
    assert "<strong>Bottom line:</strong>" in html and "<table>" in html and "<td>North</td>" in html
    assert "<script" not in html and "&lt;script&gt;" in html  # shown as text, never run
    assert "href=\"javascript" not in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_numbers_are_read_with_separators_and_scales():
    assert numbers_in("Revenue was 1,250.5 and 2.5M, up 12%") == [("1,250.5", 1250.5), ("2.5M", 2.5e6),
                                                                     ("12", 12.0)]


def test_traceable_numbers_pass():
    answer = "North made 1,250 (62.5% of 2,000), 500 more than South's 750; North is 66.7% above South."
    assert unverified_numbers(answer, ROWS) == []


def test_invented_numbers_are_listed():
    answer = "North made 1,250 and the East made 4,321, growing 37.2% in 2024."
    assert unverified_numbers(answer, ROWS) == ["4,321", "37.2"]


def test_rounded_and_scaled_values_are_traceable():
    rows = [{"v": 1234567.0}]
    assert unverified_numbers("about 1.23M or 1,234,567", rows) == []


def test_unverified_numbers_are_highlighted_in_the_html_where_they_stand():
    answer = ("The East made **4,321\u2020** and `4,321` in code, vs North's 1,250.\n\n"
              "| r | v |\n|---|---|\n| E | 4,321\u2020 |")
    html = markdown_to_html(answer, unverified=["4,321"])
    mark = '<mark class="unverified" title="not found in the query result">4,321\u2020</mark>'
    assert html.count(mark) == 2 and f"<strong>{mark}</strong>" in html and f"<td>{mark}</td>" in html
    assert "<code>4,321</code>" in html and "<mark" not in html.split("North")[1].split("<table>")[0]
    assert "<mark" not in markdown_to_html(answer)  # nothing is highlighted unless it was found unverified


def test_marks_cannot_be_forged_by_the_model():
    html = markdown_to_html('<mark class="unverified" onclick="x()">1</mark> 4,321', unverified=["4,321"])
    assert html.count("<mark") == 1  # the only element is the server's; the model's is shown as text
    assert '&lt;mark class="unverified" onclick="x()"&gt;1&lt;/mark&gt;' in html


def test_the_original_frontend_gets_the_marked_number_without_the_mark_element():
    html = markdown_to_html("**East:** 4,321\u2020 in [a link 4,321\u2020](https://example.com).", unverified=["4,321"])
    assert frontend_html(html) == ('<p><strong>East:</strong> 4,321\u2020 in <a href="https://example.com" '
                                   'rel="noopener noreferrer nofollow">a link 4,321\u2020</a>.</p>\n')
