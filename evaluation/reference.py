"""Known answers: each data case's reference SQL, run by the harness itself with DuckDB over the bundled CSVs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.cases import Case

DATA_DIR = Path(__file__).resolve().parent / "data"
Table = tuple[list[str], list[tuple[Any, ...]]]  # column names, rows


def reference_tables(cases: tuple[Case, ...], data_dir: Path = DATA_DIR) -> dict[str, list[Table]]:
    """Every data case's reference results, one per acceptable shape, keyed by case id."""
    import duckdb

    connection = duckdb.connect()
    try:
        for csv in sorted(data_dir.glob("*.csv")):
            # The same type detection as a user's upload would need (dates as DATE, amounts as DOUBLE).
            connection.execute(f"CREATE TABLE {csv.stem} AS SELECT * FROM read_csv(?)", [str(csv)])
        return {case.id: [_run(connection, sql) for sql in case.references] for case in cases if case.kind == "data"}
    finally:
        connection.close()


def _run(connection: Any, sql: str) -> Table:
    cursor = connection.execute(sql)
    return [column[0] for column in cursor.description], cursor.fetchall()
