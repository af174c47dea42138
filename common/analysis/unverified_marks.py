"""Numbers written in an answer, and the marks that show which of them the query result does not back.

An answer's unverified numbers (see ``answer.unverified_numbers``) are marked where they appear, the same way in
every rendering: in the Markdown a ``†`` follows each one and a closing footnote says what it means (it reads
well raw and renders well anywhere); the HTML and the PDF also highlight them. Code, links and list markers are
never marked: a sign inside them would change what they say.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from typing import Any

UNVERIFIED_SIGN = "\u2020"  # the dagger: a footnote mark readers know, and one the PDF's standard fonts have
UNVERIFIED_TITLE = "not found in the query result"
UNVERIFIED_NOTE = (f"*{UNVERIFIED_SIGN} Not found in the query result: check the figures marked {UNVERIFIED_SIGN} "
                   "before relying on them.*")

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.])[-+]?\d+(?:\.\d+)?")
_SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_SCALE_AFTER = re.compile(r"\s?(k|thousand|mn|m|million|bn|b|billion)\b", re.IGNORECASE)
# Inline places a sign must not go: code spans, link targets, autolinks, bare URLs, entities, ordered-list markers
# and link reference definitions.
_UNMARKABLE = re.compile(r"(`+)[\s\S]*?(?<!`)\1(?!`)|\]\([^)]*\)|<[A-Za-z][\w+.-]{1,31}:[^\s<>]*>|https?://\S+"
                         r"|&#?\w+;|^[ \t>]*\d{1,9}[.)](?=\s|$)|^ {0,3}\[[^\]]+\]:.*$", re.MULTILINE)


def number_spans(text: str) -> Iterator[tuple[int, int, str, float]]:
    """Yield each number in ``text`` as (start, end, as written, value), a k/M/B scale after it included."""
    for match in _NUMBER.finditer(text or ""):
        written, end = match.group(0), match.end()
        value = float(written.replace(",", ""))
        scale = _SCALE_AFTER.match(text, end)
        if scale:
            value *= _SCALES[scale.group(1).lower()]
            written, end = written + scale.group(0), scale.end()
        yield match.start(), end, written.strip(), value


def split_unverified(text: str, unverified: Iterable[str]) -> list[tuple[str, bool]]:
    """Cut plain ``text`` into (piece, is an unverified number) pieces; a marked piece keeps its % and its sign."""
    wanted, pieces, last = set(unverified), [], 0
    if not wanted:
        return [(text, False)] if text else []
    for start, end, written, _ in number_spans(text):
        if written not in wanted:
            continue
        end = _after_number(text, end)
        end += text.startswith(UNVERIFIED_SIGN, end)
        pieces += [(text[last:start], False), (text[start:end], True)]
        last = end
    pieces.append((text[last:], False))
    return [(piece, marked) for piece, marked in pieces if piece]


def mark_markdown(markdown: str, unverified: Iterable[str]) -> str:
    """Put the sign after each unverified number outside code and links, and end with the footnote explaining it.

    Unchanged when nothing can be marked; marking an already marked text changes nothing.
    """
    wanted = set(unverified)
    if not wanted or not markdown:
        return markdown
    starts, ends = _unmarkable_spans(markdown)
    pieces, last, marked = [], 0, False
    for start, end, written, _ in number_spans(markdown):
        index = bisect.bisect_right(starts, start) - 1
        if written not in wanted or (index >= 0 and start < ends[index]):
            continue
        end = _after_number(markdown, end)
        marked = True
        if not markdown.startswith(UNVERIFIED_SIGN, end):
            pieces.append(markdown[last:end] + UNVERIFIED_SIGN)
            last = end
    text = "".join(pieces) + markdown[last:]
    if not marked or UNVERIFIED_NOTE in text:
        return text
    return f"{_close_open_fence(text).rstrip()}\n\n{UNVERIFIED_NOTE}\n"


def mark_html_tokens(tokens: list[Any], unverified: Iterable[str]) -> None:
    """Wrap the unverified numbers in markdown-it ``tokens`` (their plain text only) in ``<mark class=unverified>``."""
    from markdown_it.token import Token

    wanted = set(unverified)
    opening = f'<mark class="unverified" title="{UNVERIFIED_TITLE}">'
    for token in tokens:
        if token.type != "inline" or not token.children or not wanted:
            continue
        children, in_autolink = [], False
        for child in token.children:
            in_autolink = (in_autolink or _opens_autolink(child)) and child.type != "link_close"
            if child.type != "text" or in_autolink:
                children.append(child)
                continue
            for piece, marked in split_unverified(child.content, wanted):
                text = Token("text", "", 0, content=piece)
                children += [Token("html_inline", "", 0, content=opening), text,
                             Token("html_inline", "", 0, content="</mark>")] if marked else [text]
        token.children = children


def _opens_autolink(token: Any) -> bool:
    """Whether ``token`` starts a link written as its own address, whose text must stay the address."""
    return token.type == "link_open" and token.markup == "autolink"


def _after_number(text: str, end: int) -> int:
    """Where a number's mark ends: after a percent sign written right after it (``12%`` reads as one figure)."""
    return end + 1 if text.startswith("%", end) else end


def _unmarkable_spans(markdown: str) -> tuple[list[int], list[int]]:
    """The character ranges of ``markdown`` a sign must not go into, sorted and disjoint: code blocks and the
    inline places of ``_UNMARKABLE``."""
    from markdown_it import MarkdownIt

    line_starts = [0] + [match.end() for match in re.finditer("\n", markdown)] + [len(markdown) + 1]
    spans = [(line_starts[token.map[0]], line_starts[min(token.map[1], len(line_starts) - 1)])
             for token in MarkdownIt("commonmark", {"html": False}).enable("table").parse(markdown)
             if token.type in ("fence", "code_block") and token.map]
    spans += [match.span() for match in _UNMARKABLE.finditer(markdown)]
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(spans):
        if ends and start < ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _close_open_fence(markdown: str) -> str:
    """Close a fenced code block left open at the end, so the footnote after it is text, not code."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark", {"html": False}).enable("table").parse(markdown)
    last = tokens[-1] if tokens else None
    if last is None or last.type != "fence" or not last.map:
        return markdown
    lines = markdown.splitlines()
    closing = lines[last.map[1] - 1].strip() if last.map[1] - 1 > last.map[0] and last.map[1] <= len(lines) else ""
    if closing and set(closing) == {last.markup[0]} and len(closing) >= len(last.markup):
        return markdown
    return f"{markdown.rstrip()}\n{last.markup}"
