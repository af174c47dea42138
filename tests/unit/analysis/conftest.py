"""Helpers for the upload-parsing tests: every fixture file is generated here, in the test's own tmp_path."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.analysis.ingest import IngestLimits, IngestResult, ingest

LIMITS = IngestLimits(max_columns=50, ragged_row_tolerance=0.1, max_uncompressed_bytes=50 * 1024 * 1024,
                      preview_rows=100, attachment_text_chars=2000)


@pytest.fixture
def limits() -> IngestLimits:
    """Small limits, so that the tests can reach them with small files."""
    return LIMITS


@pytest.fixture
def upload(tmp_path) -> Callable[..., IngestResult]:
    """Write ``content`` as ``filename`` and ingest it: ``upload("a.csv", "x,y\\n1,2\\n")``."""

    def run(filename: str, content: bytes | str, limits: IngestLimits = LIMITS, encoding: str = "utf-8"):
        path = tmp_path / f"upload-{filename}"
        path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
        return ingest(str(path), filename, limits, str(tmp_path / "work"))

    return run


@pytest.fixture
def rows() -> Callable[[IngestResult], list[dict]]:
    """Read the first table of a result back from its Parquet copy as a list of row dicts."""

    def read(result: IngestResult, index: int = 0) -> list[dict]:
        import polars as pl

        return pl.read_parquet(result.tables[index].parquet_path).to_dicts()

    return read
