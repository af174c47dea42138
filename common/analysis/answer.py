"""The compiled answer: Markdown to sanitised HTML, and every number in it checked against the result.

The compiler's Markdown is rendered with markdown-it (CommonMark, raw HTML disabled) and then cleaned with
nh3 to the tags the frontend keeps (FRONTEND_CONTRACT.md §8.1), so model output can never carry script,
style or attributes into a page. Numbers in the answer that cannot be traced to the result table (within
rounding, as a percentage, or with a k/M/B/thousands scale) are reported, not silently trusted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "br", "p", "ul", "ol", "li", "blockquote", "code", "pre",
                "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "td", "th", "a"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])[-+]?\d+(?:\.\d+)?")
_SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_SCALE_AFTER = re.compile(r"\s?(k|thousand|mn|m|million|bn|b|billion)\b", re.IGNORECASE)
_YEARS = range(1900, 2101)


def markdown_to_html(markdown: str) -> str:
    """Render Markdown to an HTML fragment with only the frontend's allowed tags (links open safely)."""
    import nh3
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown or "")
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer nofollow")


def numbers_in(text: str) -> list[tuple[str, float]]:
    """Return the numbers written in ``text`` as (as written, value with its k/M/B scale applied)."""
    found = []
    for match in _NUMBER.finditer(text or ""):
        written = match.group(0)
        value = float(written.replace(",", ""))
        scale = _SCALE_AFTER.match(text, match.end())
        if scale:
            value *= _SCALES[scale.group(1).lower()]
            written += scale.group(0)
        found.append((written.strip(), value))
    return found


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
