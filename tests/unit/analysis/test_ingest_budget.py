"""One upload cannot take the instance's memory: every format's table is held to INGEST_MAX_CELLS, a Parquet
file is refused from its footer and page headers before it is decoded and counted while it is, and a JSON
document is read record by record."""

from __future__ import annotations

import dataclasses
import io
import json
import struct

import pytest
from werkzeug.test import Client

from common import bootstrap
from common.analysis import readers, table_budget
from common.analysis.ingest import IngestLimits
from common.config import Settings
from common.errors import ConfigurationError, PayloadTooLarge
from tests.documents import two_sheet_book
from tests.memory import peak_growth

MIB = 1024 * 1024




def _parquet(table, **options) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def _repeated(value: str, rows: int, chunks: int = 1):
    """A column of ``rows`` x ``chunks`` copies of ``value``, stored once as a dictionary entry."""
    import pyarrow as pa

    chunk = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([value]))
    return pa.chunked_array([chunk] * chunks)


def _restate(parquet: bytes, stated: int, lie: int) -> bytes:
    """Rewrite every ``stated`` number in the footer as ``lie`` (Thrift compact varints of one length)."""

    def varint(number: int) -> bytes:
        number, out = number << 1, bytearray()  # zigzag, for a positive number
        while number >= 0x80:
            out.append(number & 0x7F | 0x80)
            number >>= 7
        return bytes(out + bytes([number]))

    old, new = varint(stated), varint(lie)
    assert len(old) == len(new)
    length = struct.unpack("<I", parquet[-8:-4])[0]
    footer = parquet[-8 - length:-8]
    assert old in footer
    return parquet[:-8 - length] + footer.replace(old, new) + parquet[-8:]


@pytest.fixture(scope="module")
def parquet_bomb() -> bytes:
    """200 million rows of one value, in about 600 KB."""
    import pyarrow as pa

    return _parquet(pa.table({"v": _repeated("same", 1_000_000, 200)}), row_group_size=1 << 26, compression="zstd")


@pytest.fixture(scope="module")
def function_apps():
    from local_emulator.server import load_function_apps

    return load_function_apps()


@pytest.fixture
def api(function_apps, tmp_path):
    """The functions behind the gateway on local files and SQLite, with the default budget."""
    from common.gateway import route_table
    from local_emulator.server import GatewayDispatcher

    bootstrap.use(bootstrap.build(Settings.from_env({}, data_dir=str(tmp_path / "data"))))
    yield Client(GatewayDispatcher(function_apps, route_table()))
    bootstrap.use(None)


def _upload(api: Client, name: str, content: bytes):
    data = {"domain": "bombs", "file": [(io.BytesIO(content), name)]}
    return api.post("/api/v1/datasets", data=data, content_type="multipart/form-data", headers={"X-User-Id": "alice"})


def test_a_parquet_bomb_is_refused_from_its_footer(api, parquet_bomb):
    import pyarrow as pa

    warm = _upload(api, "ordinary.parquet", _parquet(pa.table({"v": ["a", "b"]})))
    assert warm.status_code == 201, warm.get_json()  # the readers are imported and work before measuring

    response, growth = peak_growth(lambda: _upload(api, "bomb.parquet", parquet_bomb))

    assert response.status_code == 413, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "TABLE_TOO_LARGE"
    assert error["details"] == {"rows": 200_000_000, "columns": 1, "max_cells": 100_000_000}
    # Decoded, the 200 million rows peaked at 1.8 GB; refused from the footer, nothing is decoded.
    assert growth < 20 * MIB, f"peak memory rose {growth / MIB:.0f} MB"
    listed = api.get("/api/v1/datasets?domain=bombs", headers={"X-User-Id": "alice"}).get_json()["items"]
    assert [item["name"] for item in listed] == ["ordinary.parquet"]


def test_a_footer_that_understates_its_pages_is_refused_by_the_pages(upload, limits):
    import pyarrow as pa
    import pyarrow.parquet as pq

    value = "z" * (40 * MIB)
    honest = _parquet(pa.table({"v": [value]}), compression="zstd", use_dictionary=False)
    stated = pq.ParquetFile(io.BytesIO(honest)).metadata.row_group(0).column(0).total_uncompressed_size
    lying = _restate(honest, stated, 1_100_000)
    assert pq.ParquetFile(io.BytesIO(lying)).metadata.row_group(0).column(0).total_uncompressed_size == 1_100_000
    assert pq.read_table(io.BytesIO(lying)).column(0)[0].as_py() == value  # pyarrow itself trusts the pages
    budget = dataclasses.replace(limits, max_uncompressed_bytes=16 * MIB)

    with pytest.raises(PayloadTooLarge) as caught:
        upload("lying.parquet", lying, budget)

    assert caught.value.code == "TABLE_TOO_LARGE" and "pages decompress to" in caught.value.message


@pytest.mark.parametrize(("bound", "value", "message"), [
    ("_MAX_FOOTER_BYTES", 200, "footer is"),  # a footer is parsed whole, at ~8x its size
    ("MAX_PAGES", 3, "column chunks"),  # each page header is read, one by one
    ("_MAX_PAGE_SET_BYTES", 1000, "bytes of pages at once"),  # pyarrow holds a page of every column
])
def test_a_parquet_file_is_refused_past_each_structural_bound(upload, monkeypatch, bound, value, message):
    import pyarrow as pa

    content = _parquet(pa.table({"a": list(range(2000)), "b": [str(i) for i in range(2000)]}), row_group_size=1000)
    assert upload("fine.parquet", content).tables[0].rows == 2000
    monkeypatch.setattr(table_budget, bound, value)

    with pytest.raises(PayloadTooLarge) as caught:
        upload("t.parquet", content)

    assert caught.value.code == "TABLE_TOO_LARGE" and message in caught.value.message


@pytest.mark.parametrize("layout", ["dictionary", "dictionary_then_plain"])
def test_a_repeated_long_value_is_counted_as_it_decodes(upload, limits, layout):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if layout == "dictionary":  # 1 MB of file, a million 1 KB values: 1 GB decoded
        content = _parquet(pa.table({"v": _repeated("y" * 1024, 1_000_000)}), compression="zstd", store_schema=False)
    else:  # a 128 KB entry 1,000 times, then a writer's plain fallback: decoded as values, a few rows a batch
        buffer, schema = io.BytesIO(), pa.schema({"v": pa.dictionary(pa.int32(), pa.string())})
        with pq.ParquetWriter(buffer, schema, compression="zstd", dictionary_pagesize_limit=200_000,
                              store_schema=False) as writer:
            writer.write_table(pa.table({"v": _repeated("x" * (128 * 1024), 1_000)}))
            writer.write_table(pa.table({"v": pa.array([f"value{i}" for i in range(100_000)]).dictionary_encode()}))
        content = buffer.getvalue()
    budget = dataclasses.replace(limits, max_uncompressed_bytes=32 * MIB)
    upload("warm.parquet", _parquet(pa.table({"v": ["a"]})))

    def run():
        with pytest.raises(PayloadTooLarge) as caught:
            upload("repeated.parquet", content, budget)
        return caught.value

    refusal, growth = peak_growth(run)

    assert refusal.code == "TABLE_TOO_LARGE" and "decodes to more than" in refusal.message
    assert growth < 64 * MIB, f"peak memory rose {growth / MIB:.0f} MB"


def test_a_parquet_file_is_read_whole_across_small_batches_and_row_groups(upload, rows, monkeypatch):
    import pyarrow as pa

    monkeypatch.setattr(table_budget, "_BATCH_CELLS", 10)  # batches of 3 rows, crossing row groups
    table = pa.table({"id": list(range(100)), "city": [["Oslo", "Rome"][i % 2] for i in range(100)],
                      "name": [f"user{i}" for i in range(100)], "kind": pa.array(["a", "b"] * 50).dictionary_encode()})
    # A 64-byte dictionary limit: "name" falls back to plain pages after its first, as big files do.
    content = _parquet(table, row_group_size=30, dictionary_pagesize_limit=64, write_batch_size=8)

    result = upload("t.parquet", content)

    assert rows(result) == table.to_pylist()
    assert result.tables[0].rows == 100


def test_a_big_json_document_is_read_in_bounded_memory(upload, rows, limits):
    records = [{"id": i, "name": f"user{i}", "price": i / 4, "city": ["Oslo", "Rome", "Lima"][i % 3]}
               for i in range(400_000)]
    content = json.dumps(records).encode()
    upload("warm.json", json.dumps(records[:2]))

    result, growth = peak_growth(lambda: upload("big.json", content))

    assert result.tables[0].rows == 400_000 and rows(result)[-1] == records[-1]
    # Parsed whole, a JSON document took 11-27x its size (here ~450 MB). Copied record by record to NDJSON,
    # which polars maps and scans in chunks: the mapped copy plus tens of MB.
    assert growth < len(content) + 64 * MIB, f"peak memory rose {growth / MIB:.0f} MB for {len(content) / MIB:.0f} MB"


def test_json_reads_the_same_whatever_its_chunk_boundaries(upload, rows, monkeypatch):
    content = ('\ufeff {"meta": {"v": [1, 2]}, "rows" :\n [ {"a": 12345, "s": "x\\"y\\u00e9"} ,\n'
               ' null, {"a": -6.5e3, "s": "}]"} ], "count": 123456789}  ')
    monkeypatch.setattr(readers, "_JSON_CHUNK", 3)

    result = upload("wrapped.json", content)

    assert rows(result) == [{"a": 12345.0, "s": 'x"yé'}, {"a": -6500.0, "s": "}]"}]
    assert result.warnings == ["rows read from the 'rows' array"]


@pytest.mark.parametrize(("name", "content"), [
    ("record.json", '[{"a": 1}, {"a": "' + "x" * (5 * MIB) + '"}]'),
    ("object.json", '{"a": "' + "x" * (3 * MIB) + '", "b": "' + "x" * (3 * MIB) + '"}'),
    ("line.ndjson", '{"a": 1}\n{"a": [' + "1," * (3 * MIB) + "1]}\n"),
])
def test_a_json_record_over_the_limit_is_refused(upload, name, content):
    with pytest.raises(PayloadTooLarge) as caught:
        upload(name, content)

    assert caught.value.code == "JSON_VALUE_TOO_LARGE"
    assert caught.value.details == {"max_chars": readers.MAX_JSON_VALUE_CHARS}


def _table_files() -> dict[str, bytes]:
    import pyarrow as pa

    return {
        "t.csv": b"sku,units\nA,3\nB,5\nC,7\n",
        "t.xlsx": two_sheet_book(),  # sheet Q2: 2 rows x 2 columns
        "t.json": json.dumps([{"sku": "A", "units": 3}, {"sku": "B", "units": 5}, {"sku": "C", "units": 7}]).encode(),
        "t.ndjson": b'{"sku": "A", "units": 3}\n{"sku": "B", "units": 5}\n{"sku": "C"}\n',
        "t.parquet": _parquet(pa.table({"sku": ["A", "B", "C"], "units": [3, 5, 7]})),
    }


@pytest.mark.parametrize("name", ["t.csv", "t.xlsx", "t.json", "t.ndjson", "t.parquet"])
def test_every_format_is_held_to_one_cells_budget(upload, limits, name):
    content = _table_files()[name]
    assert upload(name, content, dataclasses.replace(limits, max_cells=6)).tables

    with pytest.raises(PayloadTooLarge) as caught:
        upload(name, content, dataclasses.replace(limits, max_cells=3))

    assert caught.value.code == "TABLE_TOO_LARGE"
    assert caught.value.details["max_cells"] == 3 and caught.value.details["columns"] == 2


def test_a_csv_stops_at_the_first_row_past_the_budget(upload, limits):
    content = "a,b\n" + "1,2\n" * 100_000

    with pytest.raises(PayloadTooLarge) as caught:
        upload("long.csv", content, dataclasses.replace(limits, max_cells=20))

    assert caught.value.details == {"rows": 11, "columns": 2, "max_cells": 20}


def test_the_cells_budget_is_a_setting():
    assert IngestLimits.from_settings(Settings.from_env({"INGEST_MAX_CELLS": "5000"})).max_cells == 5000
    assert Settings.from_env({}).ingest_max_cells == 100_000_000
    with pytest.raises(ConfigurationError, match="INGEST_MAX_CELLS"):
        Settings.from_env({"INGEST_MAX_CELLS": "0"})
