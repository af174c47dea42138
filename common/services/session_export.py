"""A session as a PDF: every question and answer, with each answer's chart as an image and its SQL.

Rendered with ReportLab from the stored turns; chart images are the PNGs rendered at answer time, so an
export never calls a model or re-renders a chart. Answer text is the Markdown as written, escaped (the
PDF never interprets model output as markup).
"""

from __future__ import annotations

import datetime as dt
import html
import io
from typing import Any

from common import errors
from common.auth import Tenant
from common.ports import DataPorts
from common.services import sessions
from common.storage import BlobStore, keys

MAX_TEXT_CHARS = 10_000
MAX_SQL_CHARS = 4000
MAX_TURNS = 2000  # read at most this many turns; EXPORT_MAX_BYTES usually stops far earlier


def export_pdf(deps: DataPorts, tenant: Tenant, session_id: str) -> bytes:
    """Return the session's history as PDF bytes (404 for an unknown or another tenant's session).

    What goes in is bounded by EXPORT_MAX_BYTES (text and chart images): the turns past it are left out, and
    the PDF ends by saying how many.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    now = deps.clock.now()
    sessions.get_session(deps.metadata, tenant, session_id)
    turns = sessions.history(deps.metadata, tenant, session_id, first=MAX_TURNS)
    budget = deps.settings.export_max_bytes
    styles = getSampleStyleSheet()
    story: list[Any] = [Paragraph(html.escape(f"Chat history, session {session_id}"), styles["Title"]),
                        Paragraph(f"Generated at {now.isoformat(timespec='seconds')}", styles["Normal"]),
                        Spacer(1, 12)]
    if not turns:
        story.append(Paragraph("No messages yet.", styles["Normal"]))
    for index, turn in enumerate(turns, 1):
        image = _chart_image(deps.blobs, tenant, turn.get("answer") or {})
        budget -= len(turn["content"][:MAX_TEXT_CHARS]) + len(image or b"")
        if budget < 0:
            story.append(Paragraph(html.escape(f"{len(turns) - index + 1} later messages are not included: this "
                                               "export reached its size limit (EXPORT_MAX_BYTES)."), styles["Italic"]))
            break
        story += _turn(index, turn, image, styles)
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title=f"Session {session_id}").build(story)
    return buffer.getvalue()


def _turn(index: int, turn: dict[str, Any], image: bytes | None, styles: Any) -> list[Any]:
    """One question or answer: heading, text, chart image and SQL."""
    from reportlab.platypus import Image, Paragraph, Preformatted, Spacer

    stamp = dt.datetime.fromtimestamp(turn["ts"], dt.UTC).isoformat(timespec="seconds")
    flowables = [Paragraph(f"{index}. {turn['role'].title()} ({stamp})", styles["Heading3"])]
    flowables += [Paragraph(paragraph, styles["Normal"]) for paragraph in _paragraphs(turn["content"])]
    if image is not None:
        flowables.append(Image(io.BytesIO(image), width=440, height=275, kind="proportional"))
    sql = (turn.get("answer") or {}).get("sql")
    if sql:
        flowables.append(Preformatted(sql[:MAX_SQL_CHARS], styles["Code"]))
    return [*flowables, Spacer(1, 10)]


def _paragraphs(text: str) -> list[str]:
    text = text[:MAX_TEXT_CHARS]
    return [html.escape(part).replace("\n", "<br/>") for part in text.split("\n\n") if part.strip()] or [""]


def _chart_image(blobs: BlobStore, tenant: Tenant, answer: dict[str, Any]) -> bytes | None:
    chart = answer.get("chart")
    if not chart:
        return None
    try:
        return blobs.get(keys.chart_key(tenant.namespace, chart["chart_id"], "chart.png"))
    except errors.NotFound:
        return None  # the chart was deleted since; the answer's text still stands
