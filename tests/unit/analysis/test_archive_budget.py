"""The zip-bomb budget counts the bytes an .xlsx/.docx really inflates to, not what its directory states."""

from __future__ import annotations

import dataclasses
import io
import os
import random
import struct
import zipfile

import pytest
from werkzeug.test import Client

from common import bootstrap
from common.analysis.archives import MAX_MEMBERS
from common.config import Settings
from common.errors import BadRequest, PayloadTooLarge
from tests.documents import two_sheet_book
from tests.memory import peak_growth

SHEET = "xl/worksheets/sheet1.xml"
BODY = "word/document.xml"
MIB = 1024 * 1024


def _rewrite(archive: bytes, member: str, content_chunks, **options) -> bytes:
    """Copy ``archive`` with ``member``'s content replaced by the streamed ``content_chunks``."""
    source, buffer = zipfile.ZipFile(io.BytesIO(archive)), io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if info.filename != member:
                target.writestr(info.filename, source.read(info))
                continue
            with target.open(member, "w", **options) as handle:
                for chunk in content_chunks:
                    handle.write(chunk)
    return buffer.getvalue()


def _state_size(archive: bytes, member: str, stated: int) -> bytes:
    """Overwrite ``member``'s uncompressed size in the central directory and in its local header."""
    data, name, position = bytearray(archive), member.encode(), 0
    while (position := data.find(b"PK\x01\x02", position)) >= 0:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46:position + 46 + name_length] == name:
            struct.pack_into("<I", data, position + 24, stated)
            struct.pack_into("<I", data, struct.unpack_from("<I", data, position + 42)[0] + 22, stated)
        position += 4
    return bytes(data)


def _sheet(rows: list[bytes], repeat: int) -> list[bytes]:
    head = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    return [head, *(b"".join(rows) for _ in range(repeat)), b"</sheetData></worksheet>"]


def _document(paragraphs: list[bytes], repeat: int) -> list[bytes]:
    head = (b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            b"<w:body>")
    return [head, *(b"".join(paragraphs) for _ in range(repeat)), b"</w:body></w:document>"]


def _docx() -> bytes:
    import docx

    document, buffer = docx.Document(), io.BytesIO()
    document.add_paragraph("hello")
    document.save(buffer)
    return buffer.getvalue()


def lying_bomb(kind: str, megabytes: int = 200) -> bytes:
    """A real workbook or document whose main part inflates to ``megabytes`` MB, stated as 1,000 bytes."""
    block = 1 << 14
    if kind == "xlsx":
        row = b'<row><c t="inlineStr"><is><t>x</t></is></c><c><v>1</v></c></row>'
        content = _sheet([row] * block, megabytes * MIB // (len(row) * block))
        return _state_size(_rewrite(two_sheet_book(), SHEET, content), SHEET, 1000)
    paragraph = b"<w:p><w:r><w:t>lorem ipsum</w:t></w:r></w:p>"
    content = _document([paragraph] * block, megabytes * MIB // (len(paragraph) * block))
    return _state_size(_rewrite(_docx(), BODY, content), BODY, 1000)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {kind: lying_bomb(kind) for kind in ("xlsx", "docx")}


@pytest.fixture(scope="module")
def function_apps():
    from local_emulator.server import load_function_apps

    return load_function_apps()


@pytest.fixture
def api(function_apps, tmp_path):
    """The functions behind the gateway on local files and SQLite, with a 50 MB archive budget."""
    from common.gateway import route_table
    from local_emulator.server import GatewayDispatcher

    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"), excel_max_uncompressed_bytes=50 * MIB)
    bootstrap.use(bootstrap.build(settings))
    yield Client(GatewayDispatcher(function_apps, route_table()))
    bootstrap.use(None)


def _upload(api: Client, route: str, name: str, content: bytes):
    data = {"domain": "bombs", "file": [(io.BytesIO(content), name)]}
    return api.post(route, data=data, content_type="multipart/form-data", headers={"X-User-Id": "alice"})




@pytest.mark.parametrize("route", ["/api/v1/datasets", "/datasets/upload"])
@pytest.mark.parametrize("kind", ["xlsx", "docx"])
def test_a_lying_archive_is_refused_before_it_inflates_in_memory(api, bombs, route, kind):
    warm = _upload(api, route, f"ordinary.{kind}", two_sheet_book() if kind == "xlsx" else _docx())
    assert warm.status_code == 201, warm.get_json()  # the readers are imported and work before measuring

    response, growth = peak_growth(lambda: _upload(api, route, f"bomb.{kind}", bombs[kind]))

    assert response.status_code == 413, response.get_json()
    assert "ARCHIVE_TOO_LARGE" in response.get_data(as_text=True)
    # The 200 MB part inflated in full costs 400-600 MB of peak memory; counted in 64 KB pieces, almost none.
    assert growth < 30 * MIB, f"peak memory rose {growth / MIB:.0f} MB"
    listed = api.get("/api/v1/datasets?domain=bombs", headers={"X-User-Id": "alice"}).get_json()["items"]
    assert [item["name"] for item in listed] == [f"ordinary.{kind}"]


def _noise_rows(count: int) -> list[bytes]:
    # Random numbers deflate about 2:1, far under the ratio bound: only the byte count can stop these.
    rng = random.Random(8)
    return [b"<row><c><v>%d</v></c></row>" % rng.getrandbits(48) for _ in range(count)]


@pytest.mark.parametrize("kind", ["xlsx", "docx"])
def test_the_budget_counts_inflated_bytes_not_stated_ones(upload, limits, kind):
    budget = 2 * MIB
    if kind == "xlsx":
        content = _rewrite(two_sheet_book(), SHEET, _sheet(_noise_rows(120_000), 1))
        archive, member = _state_size(content, SHEET, 1000), SHEET
    else:
        paragraphs = [b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>" % row for row in _noise_rows(100_000)]
        archive, member = _state_size(_rewrite(_docx(), BODY, _document(paragraphs, 1)), BODY, 1000), BODY

    with pytest.raises(PayloadTooLarge) as caught:
        upload(f"noise.{kind}", archive, dataclasses.replace(limits, max_uncompressed_bytes=budget))

    assert (caught.value.code, caught.value.details) == ("ARCHIVE_TOO_LARGE", {"member": member, "limit": budget})


def test_many_small_members_that_make_a_bomb_together_are_refused(upload):
    book = zipfile.ZipFile(io.BytesIO(two_sheet_book()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in book.infolist():
            archive.writestr(info.filename, book.read(info))
        for index in range(30):  # 1 MB of zeros each: under the 10 MB per-member bound, 30 MB at ~1000:1 in all
            archive.writestr(f"xl/media/blank{index}.bin", bytes(MIB))

    with pytest.raises(PayloadTooLarge) as caught:
        upload("parts.xlsx", buffer.getvalue())

    assert caught.value.code == "ARCHIVE_TOO_LARGE" and "the archive is compressed" in caught.value.message


def test_a_directory_that_understates_a_member_within_the_budget_is_corrupt(upload):
    archive = _state_size(_rewrite(two_sheet_book(), SHEET, _sheet(_noise_rows(100), 1)), SHEET, 1000)

    with pytest.raises(BadRequest) as caught:
        upload("understated.xlsx", archive)

    assert caught.value.code == "CORRUPT_FILE" and "1,000 stated" in caught.value.message


def test_an_archive_of_too_many_members_is_refused(upload):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", b"<workbook/>")
        for index in range(MAX_MEMBERS):
            archive.writestr(f"xl/media/{index}", b"")

    with pytest.raises(PayloadTooLarge) as caught:
        upload("parts.xlsx", buffer.getvalue())

    assert caught.value.code == "ARCHIVE_TOO_LARGE" and f"{MAX_MEMBERS:,} members" in caught.value.message


def test_two_members_with_one_name_are_refused(upload):
    book = zipfile.ZipFile(io.BytesIO(two_sheet_book()))
    buffer = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buffer, "w") as archive:
        for info in book.infolist():
            archive.writestr(info.filename, book.read(info))
        archive.writestr(SHEET, b"<worksheet/>")

    with pytest.raises(BadRequest) as caught:
        upload("twice.xlsx", buffer.getvalue())

    assert caught.value.code == "CORRUPT_FILE" and "two members named" in caught.value.message


def test_a_member_compressed_with_a_method_office_does_not_use_is_refused(upload):
    book = zipfile.ZipFile(io.BytesIO(two_sheet_book()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        for info in book.infolist():
            archive.writestr(info.filename, book.read(info))

    with pytest.raises(BadRequest) as caught:
        upload("bzip2.xlsx", buffer.getvalue())

    assert caught.value.code == "CORRUPT_FILE" and "compression method 12" in caught.value.message


class _Unseekable(io.RawIOBase):
    """A write-only stream with no seek: zipfile then writes data descriptors after each member."""

    def __init__(self):
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        return len(data)


@pytest.mark.parametrize("layout", ["data_descriptors", "zip64"])
def test_honest_archives_in_other_layouts_still_load(upload, rows, layout):
    book = zipfile.ZipFile(io.BytesIO(two_sheet_book()))
    stream = _Unseekable() if layout == "data_descriptors" else io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in book.infolist():
            with archive.open(info.filename, "w", force_zip64=layout == "zip64") as handle:
                handle.write(book.read(info))
    content = bytes(stream.buffer) if layout == "data_descriptors" else stream.getvalue()

    result = upload("layout.xlsx", content)

    assert [table.rows for table in result.tables] == [1, 2]
    assert rows(result, 1) == [{"sku": "B", "units": 5}, {"sku": "C", "units": 7}]


def test_the_verified_copy_is_removed_after_reading(upload, tmp_path):
    upload("book.xlsx", two_sheet_book())

    assert not [name for name in os.listdir(tmp_path) if name.startswith("verified-")]
