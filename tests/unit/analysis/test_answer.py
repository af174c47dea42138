"""The answer: safe HTML from Markdown, and numbers traced to the result table."""

from common.analysis.answer import markdown_to_html, numbers_in, unverified_numbers

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
