"""The compiled answer: Markdown to sanitised HTML, and every number in it checked against the result.

The compiler's Markdown is rendered with markdown-it (CommonMark, raw HTML disabled) and then cleaned with
nh3 to the tags the frontend keeps (FRONTEND_CONTRACT.md §8.1), so model output can never carry script,
style or attributes into a page. Numbers in the answer that cannot be traced to the result table (within
rounding, as a percentage, or with a k/M/B/thousands scale) are reported, not silently trusted, and marked where
they appear (``unverified_marks``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from common.analysis.unverified_marks import mark_html_tokens, number_spans

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "br", "p", "ul", "ol", "li", "blockquote", "code", "pre",
                "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "td", "th", "a"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}
# Beyond the frontend's set, the answer HTML highlights unverified numbers: <mark class="unverified" title=...>.
_ANSWER_TAGS = ALLOWED_TAGS | {"mark"}
_ANSWER_ATTRIBUTES = {**ALLOWED_ATTRIBUTES, "mark": {"title"}}
_YEARS = range(1900, 2101)


def markdown_to_html(markdown: str, *, unverified: Iterable[str] = ()) -> str:
    """Render Markdown to an HTML fragment with only the allowed tags (links open safely), the ``unverified``
    numbers highlighted where they appear in its text."""
    import nh3
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(markdown or "")
    mark_html_tokens(tokens, unverified)
    html = parser.renderer.render(tokens, parser.options, {})
    return nh3.clean(html, tags=_ANSWER_TAGS, attributes=_ANSWER_ATTRIBUTES, url_schemes={"http", "https"},
                     allowed_classes={"mark": {"unverified"}}, link_rel="noopener noreferrer nofollow")


def frontend_html(answer_html: str) -> str:
    """Return answer HTML with only the original frontend's tags: its sanitiser turns any other element, such as
    the <mark> of an unverified number, into a paragraph of its own (FRONTEND_CONTRACT.md §8.1). The number keeps
    its sign and the answer its footnote, so the mark still shows there."""
    import nh3

    return nh3.clean(answer_html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer nofollow")


def numbers_in(text: str) -> list[tuple[str, float]]:
    """Return the numbers written in ``text`` as (as written, value with its k/M/B scale applied)."""
    return [(written, value) for _, _, written, value in number_spans(text)]


def unverified_numbers(answer: str, rows: Iterable[dict[str, Any]], *, extra: Iterable[float] = ()) -> list[str]:
    """List the numbers in ``answer`` that match no value of ``rows`` (nor a derived share or difference)."""
    known = _known_values(rows, extra)
    unverified = []
    for written, value in numbers_in(answer):
        if _is_incidental(written, value) or any(_close(value, candidate) for candidate in known):
            continue
        if written not in unverified:
            unverified.append(written)
    return unverified


def _known_values(rows: Iterable[dict[str, Any]], extra: Iterable[float]) -> list[float]:
    values = [float(v) for row in rows for v in row.values()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    values.extend(extra)
    known = set(values)
    total = sum(values)
    # Shares of the total and pairwise differences/ratios are what analysts quote; keep the set bounded.
    sample = values[:200]
    for value in sample:
        known.update({abs(value), value * 100, round(value * 100, 1)})
        if total:
            known.update({value / total * 100})
    for i, first in enumerate(sample[:60]):
        for second in sample[i + 1:60]:
            known.update({abs(first - second)})
            if second:
                known.update({(first / second - 1) * 100, (second / first - 1) * 100 if first else 0.0})
    known.add(total)
    return list(known)


def _close(value: float, candidate: float) -> bool:
    if value == candidate:
        return True
    # Answers round: accept what the candidate rounds to at 0-2 decimals, or within 0.5% of it.
    for digits in (0, 1, 2):
        if round(candidate, digits) == value or round(abs(candidate), digits) == abs(value):
            return True
    return candidate != 0 and abs(value - candidate) / abs(candidate) <= 0.005


def _is_incidental(written: str, value: float) -> bool:
    """Numbers that are not claims about the data: list markers, small counts, years."""
    return (value.is_integer() and 0 <= value <= 10) or ("," not in written and value in _YEARS)
