"""Which format an upload is: the extension names it and the content must agree."""

from __future__ import annotations

import os

from common.analysis.archives import directory
from common.analysis.encoding import bomless_utf16
from common.errors import BadRequest

ATTACHMENT_FORMATS = ("pdf", "docx", "doc")
EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".xlsx": "xlsx", ".xls": "xls", ".json": "json",
    ".ndjson": "ndjson", ".jsonl": "ndjson", ".parquet": "parquet", ".pdf": "pdf", ".docx": "docx", ".doc": "doc",
}
CONTENT_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "doc": "application/msword",
}
HEAD_BYTES = 64 * 1024
_OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
_DESCRIPTIONS = {
    "pdf": "a PDF document", "xlsx": "an Excel workbook (.xlsx)", "docx": "a Word document (.docx)",
    "zip": "a ZIP archive that is neither an Excel workbook nor a Word document",
    "xls": "an Excel 97-2003 workbook (.xls)", "doc": "a Word 97-2003 document (.doc)",
    "ole2": "a legacy Office document", "parquet": "a Parquet file", "binary": "binary data, not text",
    "json": "JSON text", "text": "plain or delimited text (CSV)", "broken_zip": "a damaged ZIP archive",
    "broken_parquet": "a truncated Parquet file",
}
# Content kinds each extension accepts; the "broken_" kinds go on so the parser reports the file as corrupt.
_ACCEPTS = {
    "csv": {"text", "json"}, "tsv": {"text", "json"}, "json": {"json"}, "ndjson": {"json"},
    "xlsx": {"xlsx", "broken_zip"}, "docx": {"docx", "broken_zip"}, "xls": {"xls", "ole2"}, "doc": {"doc", "ole2"},
    "parquet": {"parquet", "broken_parquet"}, "pdf": {"pdf"},
}


def format_for_filename(filename: str) -> str:
    """Return the format the file's extension names, or refuse an extension we do not read."""
    extension = os.path.splitext(filename)[1].lower()
    if extension not in EXTENSIONS:
        accepted = ", ".join(sorted(EXTENSIONS))
        raise BadRequest(f"{filename!r}: unsupported file type {extension or '(none)'}; accepted: {accepted}",
                         code="UNSUPPORTED_FORMAT", details={"accepted": sorted(EXTENSIONS)})
    return EXTENSIONS[extension]


def resolve_format(path: str, filename: str) -> str:
    """Return the upload's format after checking that its content is what its extension claims."""
    claimed = format_for_filename(filename)
    if os.path.getsize(path) == 0:
        raise BadRequest(f"{filename!r} is empty", code="EMPTY_FILE")
    kind = content_kind(path)
    if kind not in _ACCEPTS[claimed]:
        raise BadRequest(f"{filename!r} is named as .{claimed} but its content looks like {_DESCRIPTIONS[kind]}",
                         code="CONTENT_MISMATCH", details={"claimed": claimed, "content": kind})
    return claimed


def content_kind(path: str) -> str:
    """Classify a file by its bytes: pdf, xlsx, docx, zip, xls, doc, ole2, parquet, json, text, binary..."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        handle.seek(-min(4, len(head)), os.SEEK_END)
        tail = handle.read(4)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head.startswith(_OLE2_MAGIC):
        return _ole2_kind(path)
    if head.startswith(b"PAR1"):
        return "parquet" if tail == b"PAR1" else "broken_parquet"
    if b"\x00" in head and not (head.startswith((b"\xff\xfe", b"\xfe\xff")) or bomless_utf16(head)):
        return "binary"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if first in (b"[", b"{") else "text"


def _zip_kind(path: str) -> str:
    members = directory(path)
    if members is None:
        return "broken_zip"
    names = [member.filename for member in members]
    if any(name.startswith("xl/") for name in names):
        return "xlsx"
    if "word/document.xml" in names:
        return "docx"
    return "zip"


def _ole2_kind(path: str) -> str:
    # Stream names sit in the compound file's directory as UTF-16LE; finding them is enough to tell a
    # workbook from a Word document without an OLE2 parser. "Book" is the BIFF5 name, "Workbook" BIFF8's.
    word = "WordDocument".encode("utf-16-le")
    books = ("Workbook".encode("utf-16-le"), "Book".encode("utf-16-le"))
    found_word = found_book = False
    with open(path, "rb") as handle:
        carry = b""
        while chunk := handle.read(1 << 20):
            window = carry + chunk
            found_word = found_word or word in window
            found_book = found_book or any(book in window for book in books)
            carry = window[-len(word):]
    if found_word and not found_book:
        return "doc"
    if found_book and not found_word:
        return "xls"
    return "ole2"
