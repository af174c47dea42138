"""Markdown as ReportLab flowables: how an answer written by a model reads in a PDF.

The Markdown is parsed with markdown-it (CommonMark and tables, raw HTML off, as ``markdown_to_html`` does) and its
tokens become flowables: paragraphs and headings in ReportLab's paragraph markup (bold, italics, inline code), list
flowables, tables with wrapping cells, and code cut to the frame's width (``pdf_code``). Links print as their text
and address; images as their description (a PDF export never fetches anything).

Model output is only ever text here: every piece of it is escaped for the paragraph markup, which is XML-like and
has tags that act (``<onDraw>``, ``<img>``, ``<a>``). What costs is bounded. Sizes: table rows and columns, cell
text and indentation, so nothing is too big for a page. Work: laying out takes time per block and per inline style,
not per byte (10,000 characters of one-word list items take twenty times longer than 10,000 of prose), so each
flowable is paid for from a ``LayoutBudget`` that one export shares across its answers.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import re
from collections.abc import Iterable
from typing import Any

from common.analysis.unverified_marks import split_unverified
from common.services.pdf_code import code_flowable

MAX_MARKDOWN_CHARS = 20_000  # of one answer: one paragraph's layout time grows faster than its length
MAX_TABLE_ROWS = 200  # body rows shown of one table; the rest are counted in a note
MAX_TABLE_COLUMNS = 8  # more would leave columns too narrow to read on A4
MAX_CELL_CHARS = 200
MAX_INDENT_DEPTH = 6  # lists and quotes nested deeper keep this indentation instead of squeezing the text
MAX_LAYOUT_UNITS = 40_000  # about 20 s of layout at worst (a unit is 0.3 to 0.6 ms)
UNVERIFIED_BACKGROUND = "#ffe58f"

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # no glyph; some end a PDF string
_ALIGNMENTS = {"text-align:right": 2, "text-align:center": 1}  # ReportLab's TA_RIGHT, TA_CENTER
_BULLETS = ("\u2022", "\u2013", "\u00b7")


class LayoutBudget:
    """The layout work flowables may still ask for, in units: one per block (paragraph, heading, list item,
    quote, code block, table cell) and one per inline style in it (bold, italics, code, a highlighted number)."""

    def __init__(self, units: int | None = None) -> None:
        self.left = MAX_LAYOUT_UNITS if units is None else units

    def spend(self, units: int) -> None:
        self.left -= units

    @property
    def exhausted(self) -> bool:
        return self.left < 0


@dataclasses.dataclass(frozen=True)
class _Context:
    unverified: frozenset[str]
    budget: LayoutBudget
    depth: int = 0  # lists and quotes around the block
    quoted: bool = False


def markdown_flowables(markdown: str, *, unverified: Iterable[str] = (),
                       budget: LayoutBudget | None = None) -> list[Any]:
    """Return ``markdown`` as flowables, the ``unverified`` numbers highlighted where they appear in its text.

    Blocks past the ``budget`` (or past MAX_MARKDOWN_CHARS) are left out, and a closing note says so.
    """
    from markdown_it import MarkdownIt
    from reportlab.platypus import Paragraph

    context = _Context(frozenset(unverified), budget or LayoutBudget())
    text = _CONTROL_CHARS.sub("", (markdown or "")[:MAX_MARKDOWN_CHARS].replace("\r\n", "\n"))
    tokens = MarkdownIt("commonmark", {"html": False}).enable("table").parse(text)
    flowables = _blocks(tokens, 0, len(tokens), context)
    if context.budget.exhausted or len(markdown or "") > MAX_MARKDOWN_CHARS:
        flowables.append(Paragraph("(The rest of this answer is not included: it is too long for this export.)",
                                   _styles()["note"]))
    return flowables


def _blocks(tokens: list[Any], start: int, end: int, context: _Context) -> list[Any]:
    flowables, index = [], start
    while index < end and not context.budget.exhausted:
        close = _closing(tokens, index)
        flowables += _block(tokens, index, close, context)
        index = close + 1
    return flowables


def _block(tokens: list[Any], index: int, close: int, context: _Context) -> list[Any]:
    from reportlab.platypus import HRFlowable

    token = tokens[index]
    context.budget.spend(1)
    if token.type in ("paragraph_open", "heading_open"):
        style = _styles()[token.tag] if token.type == "heading_open" else _styles()["body"]
        return [_paragraph(_inline(tokens[index + 1], context), style, context)]
    if token.type in ("bullet_list_open", "ordered_list_open"):
        return _list(tokens, index, close, context)
    if token.type == "blockquote_open":
        return _indented(_blocks(tokens, index + 1, close, _deeper(context, quoted=True)), context)
    if token.type in ("fence", "code_block"):
        return [code_flowable(token.content)]
    if token.type == "table_open":
        return _table(tokens, index, close, context)
    if token.type == "hr":
        return [HRFlowable(width="100%", thickness=0.5, color="#999999", spaceBefore=4, spaceAfter=4)]
    if token.type == "html_block":  # never produced with raw HTML off; shown as text if it ever is
        return [_paragraph(_escape(token.content), _styles()["body"], context)]
    return []


def _paragraph(markup: str, style: Any, context: _Context) -> Any:
    from reportlab.platypus import Paragraph

    context.budget.spend(markup.count("</"))  # each inline style costs about as much as a block
    return Paragraph(markup, style)


def _list(tokens: list[Any], index: int, close: int, context: _Context) -> list[Any]:
    from reportlab.platypus import ListFlowable, ListItem

    ordered = tokens[index].type == "ordered_list_open"
    start = int(tokens[index].attrs.get("start", 1)) if ordered else 1
    bullet = _BULLETS[context.depth % len(_BULLETS)]
    items, inner = [], _deeper(context)
    position = index + 1
    while position < close and not context.budget.exhausted:
        item_close = _closing(tokens, position)
        items.append(_blocks(tokens, position + 1, item_close, inner))
        context.budget.spend(1)
        position = item_close + 1
    if context.depth >= MAX_INDENT_DEPTH:  # no room to indent further: the marker goes in front of the text
        return [flowable for number, blocks in enumerate(items, start)
                for flowable in _with_marker(blocks, f"{number}." if ordered else bullet)]
    items = [ListItem(blocks or [_paragraph("", _styles()["body"], context)]) for blocks in items]
    if ordered:
        return [ListFlowable(items, bulletType="1", start=start, bulletFormat="%s.", leftIndent=22, bulletFontSize=9)]
    return [ListFlowable(items, bulletType="bullet", start=bullet, leftIndent=16, bulletFontSize=9)]


def _with_marker(blocks: list[Any], marker: str) -> list[Any]:
    """A list item's blocks with its bullet or number written before its first paragraph."""
    from reportlab.platypus import Paragraph

    if blocks and isinstance(blocks[0], Paragraph):
        return [Paragraph(f"{marker}\u00a0{blocks[0].text}", blocks[0].style), *blocks[1:]]
    return [Paragraph(marker, _styles()["body"]), *blocks]


def _indented(blocks: list[Any], context: _Context) -> list[Any]:
    """Blocks set in from the left, as a one-item list without a bullet (so they still break across pages)."""
    from reportlab.platypus import ListFlowable, ListItem

    if context.depth >= MAX_INDENT_DEPTH or not blocks:
        return blocks
    return [ListFlowable([ListItem(blocks)], bulletType="bullet", start=" ", leftIndent=14)]


def _table(tokens: list[Any], index: int, close: int, context: _Context) -> list[Any]:
    from reportlab.platypus import Paragraph, Table

    rows, widths, hidden_rows, hidden_columns = _table_cells(tokens, index, close, context)
    rows = [row + [""] * (len(widths) - len(row)) for row in rows]
    # Long rows may break across pages (splitInRow): the widest cells at the deepest indentation need it.
    table = Table(rows, colWidths=[f"{width / sum(widths) * 100:.3f}%" for width in widths], repeatRows=1,
                  splitInRow=1, hAlign="LEFT", style=[
                      ("GRID", (0, 0), (-1, -1), 0.25, "#999999"), ("BACKGROUND", (0, 0), (-1, 0), "#eeeeee"),
                      ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 3),
                      ("RIGHTPADDING", (0, 0), (-1, -1), 3), ("TOPPADDING", (0, 0), (-1, -1), 2),
                      ("BOTTOMPADDING", (0, 0), (-1, -1), 2)])
    notes = [f"{count} more {what} not shown" for count, what in ((hidden_rows, "rows"), (hidden_columns, "columns"))
             if count]
    return [table] + ([Paragraph(_escape(f"({'; '.join(notes)})"), _styles()["note"])] if notes else [])


def _table_cells(tokens: list[Any], index: int, close: int,
                 context: _Context) -> tuple[list[list[Any]], list[int], int, int]:
    """The header and the first rows as cell paragraphs, a width weight per column, and how many rows and
    columns are left out."""
    rows: list[list[Any]] = []
    widths: list[int] = []
    hidden_rows = hidden_columns = cells_in_row = 0
    for position in range(index, close):
        token = tokens[position]
        if token.type == "tr_open":
            cells_in_row = 0
            if len(rows) > MAX_TABLE_ROWS or context.budget.exhausted:
                hidden_rows += 1
            else:
                rows.append([])
        elif token.type in ("th_open", "td_open"):
            cells_in_row += 1
            hidden_columns = max(hidden_columns, cells_in_row - MAX_TABLE_COLUMNS)
            if hidden_rows or cells_in_row > MAX_TABLE_COLUMNS:
                continue
            cell = tokens[position + 1]
            style = _cell_style(token.type == "th_open", token.attrs.get("style", ""))
            context.budget.spend(1)
            rows[-1].append(_paragraph(_inline(cell, context, max_chars=MAX_CELL_CHARS), style, context))
            # Columns share the width by how long their text is, within limits: short numbers, wider words.
            width = min(max(len(cell.content), 4), 40)
            if len(widths) < cells_in_row:
                widths.append(width)
            widths[cells_in_row - 1] = max(widths[cells_in_row - 1], width)
    return rows, widths, hidden_rows, hidden_columns


def _inline(token: Any, context: _Context, max_chars: int | None = None) -> str:
    """Paragraph markup for an inline token: escaped text, bold, italics, code, and links as text and address;
    with ``max_chars``, at most that many characters of text."""
    parts: list[str] = []
    depth = {"b": 0, "i": 0}
    links: list[str] = []
    left = max_chars
    for child in token.children or []:
        kind = child.type
        if kind in ("strong_open", "em_open", "strong_close", "em_close"):
            tag = "b" if kind.startswith("strong") else "i"
            opening = kind.endswith("_open")
            depth[tag] += 1 if opening else -1
            if depth[tag] == (1 if opening else 0):  # only the outermost: nesting stays flat however deep
                parts.append(f"<{tag}>" if opening else f"</{tag}>")
            continue
        if kind in ("link_open", "link_close"):
            if kind == "link_open":  # an autolink's text is its address already
                links.append("" if child.markup == "autolink" else child.attrs.get("href", ""))
            elif (href := links.pop() if links else "") and max_chars is None:  # a table cell keeps to its text
                parts.append(_escape(f" ({href})"))
            continue
        text = {"softbreak": " ", "hardbreak": "\n", "image": f"[image: {child.content}]"}.get(kind, child.content)
        if left is not None:
            if left == 0:
                continue
            text, left = (text if len(text) <= left else text[:left] + "\u2026"), max(left - len(text), 0)
        if kind == "code_inline":
            parts.append(f'<font face="Courier">{_escape(text)}</font>')
        elif kind == "hardbreak":
            parts.append("<br/>")
        else:
            parts.append(_marked(text, context.unverified))
    markup = "".join(parts)
    return f'<font color="#555555">{markup}</font>' if context.quoted else markup


def _marked(text: str, unverified: frozenset[str]) -> str:
    return "".join(f'<span backColor="{UNVERIFIED_BACKGROUND}">{_escape(piece)}</span>' if marked else _escape(piece)
                   for piece, marked in split_unverified(text, unverified))


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _closing(tokens: list[Any], index: int) -> int:
    """The index of the token that closes the one at ``index`` (itself for a token that opens nothing)."""
    level = 0
    for position in range(index, len(tokens)):
        level += tokens[position].nesting
        if level <= 0:
            return position
    return len(tokens) - 1


def _deeper(context: _Context, *, quoted: bool = False) -> _Context:
    return dataclasses.replace(context, depth=context.depth + 1, quoted=context.quoted or quoted)


def _cell_style(header: bool, align: str) -> Any:
    base = _styles()["header_cell" if header else "cell"]
    alignment = _ALIGNMENTS.get(align.replace(" ", ""), 0)
    return base if alignment == 0 else _styles()[f"{'header_cell' if header else 'cell'}_{alignment}"]


@functools.cache
def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    normal = getSampleStyleSheet()["Normal"]
    body = ParagraphStyle("answer_body", parent=normal, fontSize=10, leading=13, spaceAfter=4)
    styles = {"body": body,
              "note": ParagraphStyle("answer_note", parent=body, fontName="Helvetica-Oblique", fontSize=8),
              "cell": ParagraphStyle("answer_cell", parent=body, fontSize=8, leading=10, spaceAfter=0)}
    styles["header_cell"] = ParagraphStyle("answer_header_cell", parent=styles["cell"], fontName="Helvetica-Bold")
    for name in ("cell", "header_cell"):
        for alignment in (1, 2):
            styles[f"{name}_{alignment}"] = ParagraphStyle(f"answer_{name}_{alignment}", parent=styles[name],
                                                           alignment=alignment)
    for level, size in enumerate((13, 12, 11, 10, 10, 10), 1):
        styles[f"h{level}"] = ParagraphStyle(f"answer_h{level}", parent=body, fontName="Helvetica-Bold",
                                             fontSize=size, leading=size + 3, spaceBefore=6, spaceAfter=3)
    return styles
