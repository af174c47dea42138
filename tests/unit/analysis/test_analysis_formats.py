"""Format detection: the extension names the format, the content must agree; zip bombs stop before parsing."""

import dataclasses
import io
import zipfile

import pytest

from common.analysis.formats import EXTENSIONS, content_kind
from common.errors import BadRequest, PayloadTooLarge


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _bomb(member: str) -> bytes:
    # 20 MB of zeros deflates to ~20 KB: ratio ~1000:1, over the 200:1 and 10 MB bounds.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(member, "w") as handle:
            for _ in range(20):
                handle.write(bytes(1024 * 1024))
    return buffer.getvalue()


def test_an_unknown_extension_lists_the_accepted_ones(upload):
    with pytest.raises(BadRequest) as caught:
        upload("notes.rtf", b"{\\rtf1 hello}")

    assert caught.value.code == "UNSUPPORTED_FORMAT"
    assert ".csv" in caught.value.message and ".xlsx" in caught.value.message
    assert caught.value.details["accepted"] == sorted(EXTENSIONS)


def test_extensions_are_case_insensitive(upload):
    assert upload("DATA.CSV", "a\n1\n").format == "csv"


@pytest.mark.parametrize(("filename", "content", "looks_like"), [
    ("sheet.xlsx", b"a,b\n1,2\n", "delimited text"),
    ("data.parquet", b"a,b\n1,2\n", "delimited text"),
    ("data.parquet", b"\x00\x01binary\x00" * 10, "binary data"),
    ("report.pdf", b"a,b\n1,2\n", "delimited text"),
    ("data.csv", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n", "a PDF document"),
    ("data.json", b"a,b\n1,2\n", "delimited text"),
    ("data.csv", _zip({"xl/workbook.xml": b"<workbook/>"}), "an Excel workbook"),
    ("letter.docx", _zip({"xl/workbook.xml": b"<workbook/>"}), "an Excel workbook"),
    ("sheet.xlsx", _zip({"readme.txt": b"hi"}), "a ZIP archive"),
    ("old.xls", b"PAR1" + b"\x00" * 32 + b"PAR1", "a Parquet file"),
])
def test_a_lying_extension_is_a_content_mismatch(upload, filename, content, looks_like):
    with pytest.raises(BadRequest) as caught:
        upload(filename, content)

    assert caught.value.code == "CONTENT_MISMATCH"
    assert looks_like in caught.value.message


def test_ole2_files_are_told_apart_by_their_stream_names(tmp_path):
    header = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)
    word, book = tmp_path / "word.bin", tmp_path / "book.bin"
    word.write_bytes(header + "WordDocument".encode("utf-16-le"))
    book.write_bytes(header + "Workbook".encode("utf-16-le"))

    assert (content_kind(str(word)), content_kind(str(book))) == ("doc", "xls")


@pytest.mark.parametrize(("filename", "member"), [("bomb.xlsx", "xl/worksheets/sheet1.xml"),
                                                   ("bomb.docx", "word/document.xml")])
def test_a_zip_bomb_is_refused_before_anything_decompresses_it(upload, filename, member):
    with pytest.raises(PayloadTooLarge) as caught:
        upload(filename, _bomb(member))

    # A parser would have reported the zeros as a corrupt workbook; 413 proves the guard ran first.
    assert (caught.value.status, caught.value.code) == (413, "ARCHIVE_TOO_LARGE")
    assert member in caught.value.message


def test_an_archive_over_the_total_uncompressed_limit_is_refused(upload, limits):
    archive = _zip({"xl/workbook.xml": b"<w/>" * 1000, "xl/worksheets/sheet1.xml": b"<s/>" * 1000})

    with pytest.raises(PayloadTooLarge) as caught:
        upload("big.xlsx", archive, dataclasses.replace(limits, max_uncompressed_bytes=5000))

    assert caught.value.code == "ARCHIVE_TOO_LARGE"
    assert caught.value.details == {"uncompressed_bytes": 8000}
