"""Small documents built by the tests themselves (no binary fixtures in the repository)."""

import io


def pdf_with_text(pages: list[str]) -> bytes:
    """Build a minimal valid PDF, one Helvetica text line per page, with a correct xref table."""
    count = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {count} >>",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for index, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * index} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    body, offsets = b"%PDF-1.4\n", []
    for number, content in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n{content}\nendobj\n".encode("latin-1")
    xref = f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n" + "".join(f"{o:010d} 00000 n \n" for o in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{len(body)}\n%%EOF\n"
    return body + (xref + trailer).encode("latin-1")


def two_sheet_book() -> bytes:
    """An .xlsx workbook with sheets Q1 (one row) and Q2 (two rows) of sku/units."""
    import openpyxl

    book = openpyxl.Workbook()
    first = book.active
    first.title = "Q1"
    first.append(["sku", "units"])
    first.append(["A", 3])
    second = book.create_sheet("Q2")
    second.append(["sku", "units"])
    second.append(["B", 5])
    second.append(["C", 7])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
