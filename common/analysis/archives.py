"""Zip-based uploads (.xlsx, .docx) inflated once here, under a byte budget, and re-packed for the readers.

A zip's directory states each member's sizes, and nothing makes it true: calamine inflates a member to the end
of its deflate stream whatever the directory says, and Python's zipfile inflates a whole read into memory
before cutting it to the stated size. So every member is inflated here, in small pieces, counting the bytes
that really come out, and refused past the budget or the compression ratio. The members that pass are
re-packed, their compressed bytes copied unchanged behind new headers that state what was counted, into a
fresh archive with nothing else in it: the reader is handed only that copy, so it cannot inflate anything
this module did not see (a second central directory, a duplicate name, bytes outside any member).
"""

from __future__ import annotations

import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from common.errors import BadRequest, PayloadTooLarge

MAX_MEMBERS = 10_000  # an Office file holds tens to a few thousand parts
_MAX_DIRECTORY_BYTES = MAX_MEMBERS * 256
_BOMB_RATIO, _BOMB_MEMBER_BYTES = 200, 10 * 1024 * 1024
_CHUNK = 64 * 1024
_ZIP32_LIMIT = 0xFFFFFFFF
_UTF8_NAME = 0x800
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
_END_RECORD = struct.Struct("<4s4H2LH")


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    data_start: int  # where its compressed bytes begin in the upload
    compressed: int  # compressed bytes the stream really uses
    size: int  # bytes it really inflates to
    crc: int


def directory(path: str) -> list[zipfile.ZipInfo] | None:
    """Return the archive's directory entries, None if it is not a readable zip; refuse too many entries."""
    try:
        with open(path, "rb") as handle:
            # ZipFile builds an object per entry before anyone can count them, so a 200 MB directory of tiny
            # entries costs gigabytes. Bound the directory first, read by the very function ZipFile uses.
            end = zipfile._EndRecData(handle)
            if end is None:
                return None
            if end[zipfile._ECD_SIZE] > _MAX_DIRECTORY_BYTES or end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS:
                raise _too_many()
            with zipfile.ZipFile(handle) as archive:
                members = archive.infolist()
    # NotImplementedError: a zip version or feature Python does not read, which no Office file needs.
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, struct.error):
        return None
    if len(members) > MAX_MEMBERS:
        raise _too_many()
    return members


@contextmanager
def verified_copy(path: str, max_uncompressed_bytes: int, suffix: str) -> Iterator[str]:
    """Yield the path of a re-packed copy of the archive, every member inflated and counted within the limits."""
    entries = directory(path)
    if entries is None:
        raise BadRequest("the file is not a readable ZIP-based Office document", code="CORRUPT_FILE")
    stated = sum(entry.file_size for entry in entries)
    if stated > max_uncompressed_bytes:  # an honest directory over the budget: no need to inflate anything
        raise PayloadTooLarge(f"the archive would expand to {stated:,} bytes; the limit is {max_uncompressed_bytes:,}",
                              code="ARCHIVE_TOO_LARGE", details={"uncompressed_bytes": stated})
    with tempfile.NamedTemporaryFile(prefix="verified-", suffix=suffix, dir=os.path.dirname(path) or None) as copy:
        with open(path, "rb") as source:
            _repack(source, _inflate_all(source, entries, max_uncompressed_bytes), copy)
        copy.flush()
        yield copy.name


def _inflate_all(source: BinaryIO, entries: list[zipfile.ZipInfo], budget: int) -> list[_Member]:
    names, members, total, compressed = set(), [], 0, 0
    for info in entries:
        if info.filename in names:
            raise BadRequest(f"the archive holds two members named {info.filename!r}", code="CORRUPT_FILE")
        names.add(info.filename)
        if info.flag_bits & 0x1:
            raise BadRequest(f"archive member {info.filename!r} is encrypted", code="ENCRYPTED_FILE")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BadRequest(f"archive member {info.filename!r} uses compression method {info.compress_type}, "
                             "which Office files do not", code="CORRUPT_FILE")
        member = _inflate(source, info, _data_start(source, info), (total, budget))
        if member.size != info.file_size or member.crc != info.CRC:
            raise BadRequest(f"archive member {info.filename!r} does not match the archive's directory "
                             f"({member.size:,} bytes inflated, {info.file_size:,} stated)", code="CORRUPT_FILE")
        total, compressed = total + member.size, compressed + member.compressed
        members.append(member)
        # Many members, each under the per-member bound, can still make a bomb together.
        if total > _BOMB_MEMBER_BYTES and total > _BOMB_RATIO * compressed:
            raise PayloadTooLarge(f"the archive is compressed {total / compressed:,.0f}:1, a likely zip bomb",
                                  code="ARCHIVE_TOO_LARGE", details={"uncompressed_bytes": total})
    return members


def _data_start(source: BinaryIO, info: zipfile.ZipInfo) -> int:
    source.seek(info.header_offset)
    header = source.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise BadRequest(f"archive member {info.filename!r} has no local header", code="CORRUPT_FILE")
    name_length, extra_length = struct.unpack("<2H", header[26:30])
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _inflate(source: BinaryIO, info: zipfile.ZipInfo, data_start: int, spent: tuple[int, int]) -> _Member:
    # Stored bytes count one for one; deflated ones are inflated _CHUNK at a time and never kept.
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    source.seek(data_start)
    left, fed, size, crc = info.compress_size, 0, 0, 0
    while left and not (inflater and inflater.eof):
        pending = source.read(min(_CHUNK, left))
        if not pending:
            break
        left, fed = left - len(pending), fed + len(pending)
        while pending:
            out = inflater.decompress(pending, _CHUNK) if inflater else pending
            pending = inflater.unconsumed_tail if inflater else b""
            size, crc = size + len(out), zlib.crc32(out, crc)
            _check_growth(info.filename, size, fed - len(pending), spent)
    if inflater is not None and not inflater.eof and fed:  # no bytes at all: an empty member some writers emit
        raise BadRequest(f"archive member {info.filename!r} is truncated", code="CORRUPT_FILE")
    used = fed - len(inflater.unused_data) if inflater else fed
    return _Member(info, data_start, used, size, crc)


def _check_growth(name: str, size: int, compressed: int, spent: tuple[int, int]) -> None:
    before, budget = spent  # bytes the earlier members inflated to, and the archive's budget
    if before + size > budget:
        raise PayloadTooLarge(f"the archive expands past the limit of {budget:,} bytes (at member {name!r})",
                              code="ARCHIVE_TOO_LARGE", details={"member": name, "limit": budget})
    ratio = size / max(compressed, 1)
    if size > _BOMB_MEMBER_BYTES and ratio > _BOMB_RATIO:
        raise PayloadTooLarge(f"archive member {name!r} is compressed {ratio:,.0f}:1, a likely zip bomb",
                              code="ARCHIVE_TOO_LARGE", details={"member": name})


def _repack(source: BinaryIO, members: list[_Member], out: BinaryIO) -> None:
    central = []
    for member in members:
        offset, name = out.tell(), member.info.filename.encode("utf-8")
        if max(offset, member.size, member.compressed) >= _ZIP32_LIMIT:
            raise PayloadTooLarge("the archive is over 4 GiB", code="ARCHIVE_TOO_LARGE")
        time, date = _dos_time(member.info.date_time)
        method = member.info.compress_type if member.compressed else zipfile.ZIP_STORED
        fields = (method, time, date, member.crc, member.compressed, member.size, len(name))
        out.write(_LOCAL_HEADER.pack(b"PK\x03\x04", 20, 0, _UTF8_NAME, *fields, 0) + name)
        _copy(source, member.data_start, member.compressed, out)
        central.append(_CENTRAL_ENTRY.pack(b"PK\x01\x02", 20, 0, 20, 0, _UTF8_NAME, *fields, 0, 0, 0, 0, 0, offset)
                       + name)
    directory_bytes, directory_offset = b"".join(central), out.tell()
    out.write(directory_bytes)
    out.write(_END_RECORD.pack(b"PK\x05\x06", 0, 0, len(central), len(central), len(directory_bytes),
                               directory_offset, 0))


def _copy(source: BinaryIO, start: int, length: int, out: BinaryIO) -> None:
    source.seek(start)
    while length:
        chunk = source.read(min(_CHUNK, length))
        if not chunk:  # the upload changed under us since it was inflated
            raise BadRequest("the archive could not be re-read", code="CORRUPT_FILE")
        out.write(chunk)
        length -= len(chunk)


def _dos_time(date_time: tuple[int, ...]) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return hour << 11 | minute << 5 | second // 2, max(year - 1980, 0) << 9 | month << 5 | day


def _too_many() -> PayloadTooLarge:
    return PayloadTooLarge(f"the archive holds more than {MAX_MEMBERS:,} members", code="ARCHIVE_TOO_LARGE",
                           details={"max_members": MAX_MEMBERS})
