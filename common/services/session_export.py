"""A session as a PDF: every question and answer, with each answer's chart as an image and its SQL.

Rendered with ReportLab from the stored turns; chart images are the PNGs rendered at answer time, so an
export never calls a model or re-renders a chart. Answer text is the Markdown rendered (``pdf_markdown``: headings,
emphasis, lists, tables, code; model output is only ever text there), its unverified numbers marked as in the
answer itself, and the SQL wraps at the margin.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from typing import TYPE_CHECKING, Any

from common import errors
from common.analysis.unverified_marks import mark_markdown
from common.auth import Tenant
from common.ports import DataPorts
from common.services import sessions
from common.storage import BlobStore, keys

if TYPE_CHECKING:
    from common.services.pdf_markdown import LayoutBudget

MAX_TEXT_CHARS = 10_000
MAX_SQL_CHARS = 4000
MAX_TURNS = 2000  # read at most this many turns; EXPORT_MAX_BYTES usually stops far earlier


def export_pdf(deps: DataPorts, tenant: Tenant, session_id: str) -> bytes:
    """Return the session's history as PDF bytes (404 for an unknown or another tenant's session).

    What goes in is bounded by EXPORT_MAX_BYTES (text and chart images) and by the layout work its Markdown asks
    for (``pdf_markdown.LayoutBudget``): the turns past either are left out, and the PDF ends by saying how many.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    from common.services.pdf_markdown import MAX_LAYOUT_UNITS, LayoutBudget

    now = deps.clock.now()
    sessions.get_session(deps.metadata, tenant, session_id)
    turns = sessions.history(deps.metadata, tenant, session_id, first=MAX_TURNS)
    budget, layout = deps.settings.export_max_bytes, LayoutBudget()
    styles = getSampleStyleSheet()
    story: list[Any] = [Paragraph(html.escape(f"Chat history, session {session_id}"), styles["Title"]),
                        Paragraph(f"Generated at {now.isoformat(timespec='seconds')}", styles["Normal"]),
                        Spacer(1, 12)]
    if not turns:
        story.append(Paragraph("No messages yet.", styles["Normal"]))
    for index, turn in enumerate(turns, 1):
        image = _chart_image(deps.blobs, tenant, turn.get("answer") or {})
        budget -= len(turn["content"][:MAX_TEXT_CHARS]) + len(image or b"")
        if budget < 0 or layout.exhausted:
            limit = "EXPORT_MAX_BYTES" if budget < 0 else f"{MAX_LAYOUT_UNITS} formatted blocks"
            story.append(Paragraph(html.escape(f"{len(turns) - index + 1} later messages are not included: this "
                                               f"export reached its size limit ({limit})."), styles["Italic"]))
            break
        story += _turn(index, turn, image, styles, layout)
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title=f"Session {session_id}").build(story)
    return buffer.getvalue()


def _turn(index: int, turn: dict[str, Any], image: bytes | None, styles: Any, layout: LayoutBudget) -> list[Any]:
    """One question or answer: heading, text, chart image and SQL."""
    from reportlab.platypus import Image, Paragraph, Spacer

    from common.services.pdf_code import code_flowable
    from common.services.pdf_markdown import markdown_flowables

    answer = turn.get("answer") or {}
    stamp = dt.datetime.fromtimestamp(turn["ts"], dt.UTC).isoformat(timespec="seconds")
    flowables = [Paragraph(f"{index}. {turn['role'].title()} ({stamp})", styles["Heading3"])]
    if turn["role"] == "user":  # the question is plain text as typed
        parts = [part for part in turn["content"][:MAX_TEXT_CHARS].split("\n\n") if part.strip()]
        layout.spend(len(parts))
        flowables += [Paragraph(html.escape(part).replace("\n", "<br/>"), styles["Normal"]) for part in parts]
    else:
        # Answers stored before numbers were marked get their marks here; a marked answer is left as it is.
        unverified = [str(number) for number in answer.get("unverified_numbers") or []]
        flowables += markdown_flowables(mark_markdown(turn["content"][:MAX_TEXT_CHARS], unverified),
                                        unverified=unverified, budget=layout)
    if image is not None:
        flowables.append(Image(io.BytesIO(image), width=440, height=275, kind="proportional"))
    if answer.get("sql"):
        flowables += [Paragraph("SQL", styles["Italic"]), code_flowable(answer["sql"][:MAX_SQL_CHARS])]
    return [*flowables, Spacer(1, 10)]


def _chart_image(blobs: BlobStore, tenant: Tenant, answer: dict[str, Any]) -> bytes | None:
    chart = answer.get("chart")
    if not chart:
        return None
    try:
        return blobs.get(keys.chart_key(tenant.namespace, chart["chart_id"], "chart.png"))
    except errors.NotFound:
        return None  # the chart was deleted since; the answer's text still stands
