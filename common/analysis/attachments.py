"""Text of PDF and Word attachments, capped, with every parser failure turned into a 400, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

from common.analysis.archives import verified_copy
from common.errors import AppError, BadRequest


def extract_text(path: str, fmt: str, max_chars: int, max_uncompressed_bytes: int) -> tuple[str, list[str]]:
    """Return up to ``max_chars`` characters of a pdf/docx/doc attachment's text, and warnings."""
    if fmt == "doc":
        return "", [".doc (Word 97-2003) text extraction is not supported; save the file as .docx or PDF "
                    "to let questions use its text"]
    if fmt == "docx":
        # python-docx reads only the re-packed copy, whose every byte was counted against the budget.
        with verified_copy(path, max_uncompressed_bytes, suffix=".docx") as verified:
            text, truncated = _read(_docx_chunks(verified), fmt, max_chars)
    else:
        text, truncated = _read(_pdf_chunks(path), fmt, max_chars)
    warnings = [f"text truncated to {max_chars:,} characters"] if truncated else []
    if not text.strip():
        warnings.append("no text could be extracted (a scanned or image-only document?)")
    return text, warnings


def _read(chunks: Iterator[str], fmt: str, max_chars: int) -> tuple[str, bool]:
    try:
        return _collect(chunks, max_chars)
    except AppError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf, python-docx and lxml raise dozens of types on damaged input
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadRequest(f"the {fmt.upper()} file could not be read: {reason}", code="CORRUPT_FILE") from exc


def _collect(chunks: Iterator[str], max_chars: int) -> tuple[str, bool]:
    # Stop pulling pages as soon as the cap is passed: a 900-page PDF should not be read to keep 20k chars.
    parts, size = [], 0
    for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > max_chars:
            return "".join(parts)[:max_chars], True
    return "".join(parts).rstrip(), False


def _pdf_chunks(path: str) -> Iterator[str]:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted:
        try:
            # Many PDFs are encrypted with an empty user password only to restrict printing; those still open.
            opened = bool(reader.decrypt(""))
        except Exception:  # noqa: BLE001 - unsupported cipher or a broken encryption dictionary
            opened = False
        if not opened:
            raise BadRequest("the PDF is password-protected; remove the password and upload it again",
                             code="ENCRYPTED_FILE")
    for page in reader.pages:
        yield (page.extract_text() or "") + "\n"


def _docx_chunks(path: str) -> Iterator[str]:
    import docx
    from docx.table import Table

    document = docx.Document(path)
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                yield "\t".join(cell.text for cell in row.cells) + "\n"
        else:
            yield block.text + "\n"
