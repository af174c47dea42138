"""Upload parsing: turn an uploaded spreadsheet, data file or document into normalised Parquet tables or text.

``common.analysis.ingest.ingest`` is the entry point; ``tables`` answers reads (previews, exports) from the
Parquet it wrote. Every module imports polars, pyarrow, pypdf and python-docx inside the functions that need
them, so importing this package costs a cold start almost nothing.
"""
