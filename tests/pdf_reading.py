"""Reading back the PDFs the server makes: their text, and where each piece of it is drawn."""

from __future__ import annotations

import dataclasses
import io


@dataclasses.dataclass(frozen=True)
class TextRun:
    page: int
    left: float
    right: float  # where the run's last glyph ends, from the font's metrics
    font: str
    text: str


def pdf_text(pdf: bytes) -> str:
    """All the text of ``pdf``, page after page."""
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def text_runs(pdf: bytes) -> list[TextRun]:
    """Every piece of text in ``pdf`` with its horizontal extent (ReportLab draws with unscaled text matrices)."""
    from pypdf import PdfReader
    from reportlab.pdfbase.pdfmetrics import stringWidth

    runs: list[TextRun] = []
    for number, page in enumerate(PdfReader(io.BytesIO(pdf)).pages, 1):
        def visit(text, cm, tm, font, size, number=number):
            text = text.rstrip("\n")
            if not text.strip() or not font:
                return
            left = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            name = str(font["/BaseFont"]).lstrip("/")
            runs.append(TextRun(number, left, left + stringWidth(text, name, size) * cm[0], name, text))

        page.extract_text(visitor_text=visit)
    return runs


def page_count(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)
