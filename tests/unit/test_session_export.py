"""A session's PDF: each answer's Markdown rendered with its unverified numbers marked, its chart and its SQL
wrapped inside the margins; and what goes in bounded, however large or odd the stored answers are."""

from __future__ import annotations

import datetime as dt
import io
import types

import pytest

from common.analysis.answer import unverified_numbers
from common.analysis.unverified_marks import mark_markdown
from common.auth import Tenant
from common.clock import FakeClock
from common.config import Settings
from common.services import session_export, sessions
from common.storage import keys
from tests.pdf_reading import page_count, pdf_text, text_runs

RIGHT_EDGE = 595.2756 - 72  # A4 less SimpleDocTemplate's right margin
ALICE = Tenant("alice")
ROWS = [{"region": "North", "revenue": 1250.0}, {"region": "South", "revenue": 750.0}]
ANSWER = """## Revenue by region

**Bottom line:** North made **1,250**, ahead of South's 750; the East made 4,321.

- North: *1,250*
- South: 750

| region | revenue |
|---|--:|
| North | 1,250 |
| East | 4,321 |

*Caveats:* one year of data.
"""
SQL = ("SELECT region, SUM(revenue) AS revenue, AVG(revenue) AS average_revenue, COUNT(*) AS orders FROM sales "
       "WHERE order_date BETWEEN '2024-01-01' AND '2024-12-31' AND channel IN ('web', 'store') GROUP BY region")


@pytest.fixture
def ports(tmp_path):
    from common.metadata.sql import SqlMetadataStore
    from common.metadata.sql_engine import create_engine_for
    from common.storage.local import LocalBlobStore

    engine = create_engine_for("", data_dir=str(tmp_path / "metadata"))
    yield types.SimpleNamespace(settings=Settings.from_env({}), clock=FakeClock(dt.datetime(2025, 1, 2, tzinfo=dt.UTC)),
                                blobs=LocalBlobStore(str(tmp_path / "blobs")), metadata=SqlMetadataStore(engine))
    engine.dispose()


def chart_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 250), "white")
    ImageDraw.Draw(image).rectangle((50, 50, 150, 240), fill="steelblue")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def ask(ports, query_id: str, answer_markdown: str, *, sql: str | None = SQL, unverified: list[str] | None = None,
        chart: bool = False, session_id: str = "s1") -> None:
    answer = {"answer_markdown": answer_markdown, "sql": sql, "unverified_numbers": unverified or []}
    if chart:
        ports.blobs.put(keys.chart_key(ALICE.namespace, query_id, "chart.png"), chart_png(), content_type="image/png")
        answer["chart"] = {"chart_id": query_id, "kind": "bar"}
    sessions.record_turns(ports.metadata, ALICE, session_id=session_id, domain="sales", query_id=query_id,
                          prompt=f"Question {query_id}: compare revenue **by region** <b>&</b>", answer=answer,
                          now=ports.clock.now())
    ports.clock.advance(1)


def test_the_answer_is_rendered_its_invented_numbers_marked_and_its_sql_wrapped(ports):
    unverified = unverified_numbers(ANSWER, ROWS)
    assert unverified == ["4,321"]
    ask(ports, "q1", mark_markdown(ANSWER, unverified), unverified=unverified, chart=True)
    pdf = session_export.export_pdf(ports, ALICE, "s1")
    text = pdf_text(pdf)
    assert "**" not in text.replace("compare revenue **by region**", "")  # the question is shown as typed
    assert "## " not in text and "|---" not in text and "*Caveats:*" not in text
    assert "Bottom line: North made 1,250" in text and "Caveats: one year of data." in text
    assert text.count("4,321\u2020") == 2 and "\u2020 Not found in the query result" in text
    assert "<b>&</b>" in text
    runs = text_runs(pdf)
    assert max(run.right for run in runs) <= RIGHT_EDGE + 0.5, max(runs, key=lambda run: run.right)
    sql_lines = [run.text for run in runs if run.font == "Courier"]
    assert len(sql_lines) > 1 and " ".join(sql_lines) == SQL  # wrapped at spaces, nothing lost
    from pypdf import PdfReader

    assert any(page.images for page in PdfReader(io.BytesIO(pdf)).pages)


def test_answers_stored_before_marking_get_their_marks_in_the_pdf(ports):
    ask(ports, "q1", ANSWER, unverified=["4,321"])
    text = pdf_text(session_export.export_pdf(ports, ALICE, "s1"))
    assert text.count("4,321\u2020") == 2 and text.count("\u2020 Not found in the query result") == 1


def test_huge_answers_tables_and_sql_are_cut_to_bounds(ports):
    table = "| n | v |\n|---|---|\n" + "".join(f"| {i} | row {i} |\n" for i in range(10_000))
    ask(ports, "q1", "# Big\n\n" + table + "word " * 200_000, sql="SELECT " + "x" * 1_000_000)
    pdf = session_export.export_pdf(ports, ALICE, "s1")
    text = pdf_text(pdf)
    assert "more rows not shown" in text and page_count(pdf) <= 12
    assert sum(len(run.text) for run in text_runs(pdf) if run.font == "Courier") == session_export.MAX_SQL_CHARS


def test_an_export_stops_when_its_layout_work_runs_out_and_says_so(ports, monkeypatch):
    from common.services import pdf_markdown

    # A tenth of the real budget keeps this test quick; the answers spend it the same way.
    monkeypatch.setattr(pdf_markdown, "MAX_LAYOUT_UNITS", pdf_markdown.MAX_LAYOUT_UNITS // 10)
    # Each answer is 10,000 characters of one-word list items: the most layout work per byte an answer can ask.
    for number in range(12):
        ask(ports, f"q{number:02d}", "- a\n" * 2500, sql=None)
    text = pdf_text(session_export.export_pdf(ports, ALICE, "s1"))
    assert f"{pdf_markdown.MAX_LAYOUT_UNITS} formatted blocks" in text and "later messages are not included" in text
    assert "Question q00" in text and "Question q02" not in text  # the second answer already runs out
    assert text.count("- a") == 0 and text.count("(The rest of this answer is not included") == 1
