"""An answer's Markdown in a PDF: formatted, never raw syntax; model output only ever text; code inside the
margins; unverified numbers highlighted; and every size bounded, however hostile the Markdown."""

from __future__ import annotations

import io

import pytest

from common.services import pdf_markdown
from common.services.pdf_code import code_flowable, wrap_code
from common.services.pdf_markdown import LayoutBudget, markdown_flowables
from tests.pdf_reading import page_count, pdf_text, text_runs

RIGHT_EDGE = 595.2756 - 72  # A4 less SimpleDocTemplate's right margin

ANSWER = """## Revenue by region

**Bottom line:** North made *1,250*; the East made 4,321\u2020, see `SUM(revenue)`.

- North: 1,250
- South: 750
  1. nested
  2. [the docs](https://example.com/docs)

> Figures are net of tax.

| region | revenue |
|:--|--:|
| North | **1,250** |
| East | 4,321\u2020 |

```sql
SELECT region, SUM(revenue) AS revenue FROM sales WHERE region IN ('North', 'South', 'East', 'West') GROUP BY region
```
"""


def build(flowables: list) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4).build(flowables)
    return buffer.getvalue()


def test_markdown_is_formatted_not_printed_raw():
    pdf = build(markdown_flowables(ANSWER, unverified=["4,321"]))
    text = pdf_text(pdf)
    assert not any(syntax in text for syntax in ("**", "## ", "`", "|:--", "```", "> Figures"))
    for words in ("Revenue by region", "Bottom line:", "SUM(revenue)", "the docs (https://example.com/docs)",
                  "Figures are net of tax.", "1.", "2.", "SELECT region"):
        assert words in text
    fonts = {run.text: run.font for run in text_runs(pdf)}
    assert fonts["Bottom line:"] == "Helvetica-Bold" and fonts["1,250"] == "Helvetica-Oblique"
    assert fonts["Revenue by region"] == "Helvetica-Bold" and fonts["SUM(revenue)"] == "Courier"


def test_blocks_become_lists_tables_and_wrapping_code():
    from reportlab.platypus import ListFlowable, Paragraph, Table

    flowables = markdown_flowables(ANSWER)
    kinds = [type(flowable).__name__ for flowable in flowables]
    assert kinds == ["Paragraph", "Paragraph", "ListFlowable", "ListFlowable", "Table", "WrappedCode"]
    assert isinstance(flowables[2], ListFlowable) and isinstance(flowables[4], Table)
    cells = flowables[4]._cellvalues
    assert [[cell.text for cell in row] for row in cells] == [["region", "revenue"], ["North", "<b>1,250</b>"],
                                                             ["East", "4,321\u2020"]]
    assert all(isinstance(cell, Paragraph) for row in cells for cell in row)  # they wrap inside their column


def test_code_and_long_lines_stay_inside_the_right_margin():
    long_line = "SELECT " + ", ".join(f"SUM(col_{i}) AS total_{i}" for i in range(12)) + " FROM t " + "x" * 300
    assert len(long_line) > 200
    nested = f"- item\n  - deeper\n\n    ```\n    {long_line}\n    ```\n\n{'y' * 400}"
    pdf = build([code_flowable(long_line), *markdown_flowables(nested)])
    runs = text_runs(pdf)
    assert max(run.right for run in runs) <= RIGHT_EDGE + 0.5, max(runs, key=lambda run: run.right)
    assert "".join(run.text for run in runs if run.font == "Courier").count("x") == 600  # cut, not lost


def test_code_wraps_at_spaces_where_it_can_and_cuts_where_it_cannot():
    assert wrap_code("SELECT a, b FROM t", 10) == "SELECT a,\nb FROM t"
    assert wrap_code("x" * 25, 10) == "x" * 10 + "\n" + "x" * 10 + "\n" + "x" * 5
    assert wrap_code("  indented\nshort", 40) == "  indented\nshort"


@pytest.mark.parametrize("hostile", [
    '<onDraw name="boom"/>', '<img src="/etc/passwd"/>', "<font size=100>big</font>", "&bogus; &lt &#x41 ]]>",
    "<b>unclosed</i>", '<a href="https://evil.example">x</a>', "<para>x</para>", "<br/>", "<span backColor=red>x"])
def test_hostile_markdown_is_printed_as_text(hostile):
    markdown = f"**{hostile}** | {hostile} |\n\n- `{hostile}`\n\n| a |\n|---|\n| {hostile} |\n\n[{hostile}](https://x.example)"
    pdf = build(markdown_flowables(markdown + "\x00\x01"))
    text = pdf_text(pdf)
    assert text.count(hostile) == 5, text
    assert "/Subtype /Link" not in pdf.decode("latin-1") and "/Subtype /Image" not in pdf.decode("latin-1")


def test_unverified_numbers_are_highlighted_where_they_stand():
    from pypdf import PdfReader
    from reportlab.lib.colors import HexColor
    from reportlab.lib.rl_accel import fp_str

    flowables = markdown_flowables("East made 4,321\u2020 of 1,250.\n\n| v |\n|---|\n| 4,321\u2020 |",
                                   unverified=["4,321"])
    mark = f'<span backColor="{pdf_markdown.UNVERIFIED_BACKGROUND}">4,321\u2020</span>'
    assert flowables[0].text == f"East made {mark} of 1,250."
    assert flowables[1]._cellvalues[1][0].text == mark
    pdf = build(flowables)
    fill = fp_str(*HexColor(pdf_markdown.UNVERIFIED_BACKGROUND).rgb()) + " rg"
    streams = "".join(page.get_contents().get_data().decode("latin-1") for page in PdfReader(io.BytesIO(pdf)).pages)
    assert streams.count(fill) == 2  # one highlight in the sentence, one in the table
    assert "4,321\u2020" in pdf_text(pdf) and "1,250" in pdf_text(pdf)
    assert fill not in "".join(page.get_contents().get_data().decode("latin-1") for page in PdfReader(
        io.BytesIO(build(markdown_flowables("East made 4,321 of 1,250.")))).pages)


def test_a_ten_thousand_row_table_shows_its_first_rows_and_counts_the_rest():
    markdown = "| n | v |\n|---|---|\n" + "".join(f"| {i} | row {i} |\n" for i in range(10_000))
    table, rows_note, answer_note = markdown_flowables(markdown)
    assert len(table._cellvalues) == pdf_markdown.MAX_TABLE_ROWS + 1  # with the header
    # Only the first MAX_MARKDOWN_CHARS of the answer are read: they hold the rows counted here.
    shown = markdown[:pdf_markdown.MAX_MARKDOWN_CHARS].count("\n") - 2
    assert rows_note.text == f"({shown - pdf_markdown.MAX_TABLE_ROWS} more rows not shown)"
    assert answer_note.text.startswith("(The rest of this answer is not included")


def test_wide_tables_and_long_cells_are_cut_to_fit_a_page():
    columns = 50
    markdown = ("|" + "|".join(f"h{i}" for i in range(columns)) + "|\n|" + "---|" * columns + "\n"
                + "|" + "|".join("W" * 300 for _ in range(columns)) + "|\n")
    table, note = markdown_flowables(markdown)
    assert len(table._cellvalues[0]) == pdf_markdown.MAX_TABLE_COLUMNS
    assert note.text == f"({columns - pdf_markdown.MAX_TABLE_COLUMNS} more columns not shown)"
    assert len(table._cellvalues[1][0].text) == pdf_markdown.MAX_CELL_CHARS + 1  # and an ellipsis
    # The widest cells, eight to a row, deep in quotes and lists, still lay out (a row too tall would not).
    deep = "".join("  " * i + "- l\n" for i in range(8)) + "\n" + "\n".join("> " * 8 + line for line in
                                                                             markdown.splitlines())
    assert page_count(build(markdown_flowables(deep))) < 20


def test_deep_nesting_and_huge_input_stay_bounded():
    deep_list = "".join("  " * i + f"- item {i}\n" for i in range(3000))
    deep_quote = ">" * 10_000 + " deep"
    emphasis = "*" * 20_000 + "a" + "*" * 20_000
    paragraph = "word " * 400_000
    for markdown in (deep_list, deep_quote, emphasis, paragraph):
        assert page_count(build(markdown_flowables(markdown))) <= 12
    assert "not included" in pdf_text(build(markdown_flowables(paragraph)))
    assert page_count(build([code_flowable("x" * 1_000_000)])) <= 5  # 20,000 characters at most


def test_layout_work_is_paid_from_the_budget_and_stops_when_it_runs_out():
    items = "- a\n" * 2000
    budget = LayoutBudget(300)
    flowables = markdown_flowables(items, budget=budget)
    assert budget.exhausted and flowables[-1].text.startswith("(The rest of this answer is not included")
    assert len(flowables[0]._flowables) < 200  # the list stopped well before its 2,000 items
    assert markdown_flowables("more text", budget=budget)[-1].text.startswith("(The rest")
    unbounded = LayoutBudget()
    markdown_flowables("**a** *b* `c` 4321", unverified=["4321"], budget=unbounded)
    assert pdf_markdown.MAX_LAYOUT_UNITS - unbounded.left == 5  # the paragraph and its four inline styles


def test_lists_deeper_than_the_indent_limit_stop_indenting_and_keep_their_markers():
    depth = pdf_markdown.MAX_INDENT_DEPTH
    markdown = "".join("  " * level + f"- level {level}\n" for level in range(depth + 3))
    lefts = {run.text[-7:]: run.left for run in text_runs(build(markdown_flowables(markdown)))}
    assert lefts[f"level {depth - 2}"] < lefts[f"level {depth - 1}"]
    assert lefts[f"level {depth - 1}"] == lefts[f"level {depth}"] == lefts[f"level {depth + 2}"]
    assert f"\u2013 level {depth + 1}" in pdf_text(build(markdown_flowables(markdown)))
