"""Code in a PDF (an answer's SQL, a fenced block): monospaced, its lines cut to the width it is drawn in.

ReportLab's ``Preformatted`` never wraps, so a long SQL line ran off the page. The width is known only when the
flowable is laid out (a code block inside a list is narrower than one on its own), so the cutting happens then.
"""

from __future__ import annotations

import functools
import re
from typing import Any

MAX_CODE_CHARS = 20_000  # of one block; the session export stores and shows at most 4,000 characters of SQL

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # no glyph; some end a PDF string


def code_flowable(code: str) -> Any:
    """Return ``code`` as a monospaced block whose lines wrap at the width it is drawn in."""
    text = _CONTROL_CHARS.sub("", code[:MAX_CODE_CHARS].replace("\r\n", "\n")).expandtabs(4)
    return _wrapped_code_class()(text, _code_style())


def wrap_code(code: str, width: int) -> str:
    """Return ``code`` with every line at most ``width`` characters, cut after a space in its second half if any."""
    lines = []
    for line in code.split("\n"):
        while len(line) > width:
            cut = line.rfind(" ", width // 2, width) + 1 or width
            lines.append(line[:cut].rstrip(" ") or line[:cut])
            line = line[cut:]
        lines.append(line)
    return "\n".join(lines)


@functools.cache
def _code_style() -> Any:
    from reportlab.lib.styles import ParagraphStyle

    return ParagraphStyle("answer_code", fontName="Courier", fontSize=8, leading=10, leftIndent=6, spaceBefore=2,
                          spaceAfter=6)


@functools.cache
def _wrapped_code_class() -> type:
    """The wrapping code flowable, defined on first use so ReportLab is imported only by an export."""
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Flowable, Preformatted

    class WrappedCode(Flowable):
        """Preformatted text cut into lines that fit the width it is given, breaking at a space where one is near."""

        def __init__(self, code: str, style: Any) -> None:
            super().__init__()
            self.code, self.style, self._fitted = code, style, None

        def _fit(self, width: float) -> Any:
            usable = width - self.style.leftIndent - self.style.rightIndent
            per_line = max(int(usable // stringWidth("M", self.style.fontName, self.style.fontSize)), 8)
            if self._fitted is None or self._fitted[0] != per_line:
                self._fitted = (per_line, Preformatted(wrap_code(self.code, per_line), self.style))
            return self._fitted[1]

        def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803 (ReportLab's)
            self.width, self.height = self._fit(availWidth).wrap(availWidth, availHeight)
            return self.width, self.height

        def split(self, availWidth: float, availHeight: float) -> list[Any]:  # noqa: N803
            return self._fit(availWidth).split(availWidth, availHeight)

        def draw(self) -> None:
            self._fitted[1].drawOn(self.canv, 0, 0)

        def getSpaceBefore(self) -> float:  # noqa: N802 (ReportLab's)
            return self.style.spaceBefore

        def getSpaceAfter(self) -> float:  # noqa: N802
            return self.style.spaceAfter

    return WrappedCode
