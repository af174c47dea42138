"""PDF and Word attachments: text is extracted and capped; damaged or locked files are a clear 400."""

import dataclasses
import io

import pytest

from common.errors import BadRequest
from tests.documents import pdf_with_text as _pdf


def _encrypted(pdf: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_text_is_extracted_page_by_page(upload):
    result = upload("report.pdf", _pdf(["Quarterly revenue grew", "Costs fell in March"]))

    assert (result.kind, result.format, result.content_type) == ("attachment", "pdf", "application/pdf")
    assert result.tables == []
    assert "Quarterly revenue grew" in result.text and "Costs fell in March" in result.text
    assert result.text.index("Quarterly") < result.text.index("Costs")


def test_attachment_text_is_capped(upload, limits):
    result = upload("long.pdf", _pdf([f"page {n} " + "x" * 50 for n in range(10)]),
                    dataclasses.replace(limits, attachment_text_chars=120))

    assert len(result.text) == 120
    assert result.text.startswith("page 0")
    assert "text truncated to 120 characters" in result.warnings


def test_a_password_protected_pdf_is_refused_clearly(upload):
    with pytest.raises(BadRequest) as caught:
        upload("locked.pdf", _encrypted(_pdf(["secret"]), user_password="s3cret"))

    assert caught.value.code == "ENCRYPTED_FILE"
    assert "password" in caught.value.message


def test_a_pdf_encrypted_without_a_user_password_still_opens(upload):
    result = upload("restricted.pdf", _encrypted(_pdf(["printing restricted"]), user_password=""))

    assert "printing restricted" in result.text


@pytest.mark.parametrize("content", [b"%PDF-1.4\n" + b"\x00garbage" * 50, b"%PDF-1.7\n1 0 obj\n<< /Type"])
def test_a_corrupt_pdf_is_a_400(upload, content):
    with pytest.raises(BadRequest) as caught:
        upload("broken.pdf", content)

    assert caught.value.code == "CORRUPT_FILE"


def test_docx_paragraphs_and_tables_are_extracted_in_order(upload):
    import docx

    document = docx.Document()
    document.add_paragraph("Pricing policy")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, [("tier", "price"), ("gold", "99")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph("Valid from 2024")
    buffer = io.BytesIO()
    document.save(buffer)

    result = upload("policy.docx", buffer.getvalue())

    assert result.format == "docx"
    assert result.text.split("\n") == ["Pricing policy", "tier\tprice", "gold\t99", "Valid from 2024"]


def test_a_corrupt_docx_is_a_400(upload):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", b"<w:document><unclosed")

    with pytest.raises(BadRequest) as caught:
        upload("broken.docx", buffer.getvalue())

    assert caught.value.code == "CORRUPT_FILE"


def test_a_doc_is_stored_with_empty_text_and_a_warning(upload):
    ole2 = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504) + "WordDocument".encode("utf-16-le")

    result = upload("old.doc", ole2)

    assert (result.kind, result.format, result.text) == ("attachment", "doc", "")
    assert "not supported" in result.warnings[0]
