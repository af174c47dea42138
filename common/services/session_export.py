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


def export_pdf(deps: DataPorts, tenant: Tenant, session_id: str) -> bytes:
    """Return the session's history as PDF bytes (404 for an unknown or another tenant's session)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Image, Paragraph, Preformatted, SimpleDocTemplate, Spacer

    now = deps.clock.now()
    sessions.get_session(deps.metadata, tenant, session_id)
    turns = sessions.history(deps.metadata, tenant, session_id)
    styles = getSampleStyleSheet()
    story: list[Any] = [Paragraph(html.escape(f"Chat history, session {session_id}"), styles["Title"]),
                        Paragraph(f"Generated at {now.isoformat(timespec='seconds')}", styles["Normal"]),
                        Spacer(1, 12)]
    if not turns:
        story.append(Paragraph("No messages yet.", styles["Normal"]))
    for index, turn in enumerate(turns, 1):
        stamp = dt.datetime.fromtimestamp(turn["ts"], dt.UTC).isoformat(timespec="seconds")
        story.append(Paragraph(f"{index}. {turn['role'].title()} ({stamp})", styles["Heading3"]))
        for paragraph in _paragraphs(turn["content"]):
            story.append(Paragraph(paragraph, styles["Normal"]))
        answer = turn.get("answer") or {}
        image = _chart_image(deps.blobs, tenant, answer)
        if image is not None:
            story.append(Image(io.BytesIO(image), width=440, height=275, kind="proportional"))
        if answer.get("sql"):
            story.append(Preformatted(answer["sql"][:4000], styles["Code"]))
        story.append(Spacer(1, 10))
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, title=f"Session {session_id}").build(story)
    return buffer.getvalue()


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
