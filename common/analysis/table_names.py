"""SQL table names for a domain's tables: ``Sales 2024.csv`` -> ``sales_2024``, ``book.xlsx#Q1`` -> ``book_q1``.

A name is the file stem (with ``_<sheet>`` for a spreadsheet sheet), accents stripped, lower-cased, every run
of other characters turned into one ``_``. A name the model could not write bare gets a ``t_`` prefix: one
starting with a digit, and one that DuckDB or sqlglot reads as a keyword (``order.csv`` -> ``t_order``).
Names are given in sorted order, so the same tables always get the same names; a collision gets ``_2``, ``_3``.
"""

from __future__ import annotations

import os
import re
import unicodedata

# DuckDB's reserved and type-function keywords (duckdb_keywords()), plus the words sqlglot will not parse as
# a bare table name; tests/unit/analysis/test_table_names.py checks this list against DuckDB's catalogue.
KEYWORDS = frozenset("""
all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create
default deferrable desc describe distinct do else end except false fetch for foreign from group having in
initially intersect into lambda lateral leading limit not null offset on only or order pivot pivot_longer
pivot_wider placing primary qualify references returning select show some summarize symmetric table then to
trailing true union unique unpivot using variadic when where window with
anti asof at authorization binary by collation columns concurrently cross freeze full generated glob ilike
inner is isnull join left like map natural notnull outer overlaps positional right semi similar struct
tablesample try_cast tuple unpack verbose
alter between drop force grant insert install revoke rollback values
""".split())

_OTHER_CHARACTERS = re.compile(r"[^a-z0-9]+")


def table_names(tables: list[tuple[str, str | None]]) -> dict[str, str]:
    """Map each (dataset table name, sheet) to a unique SQL table name, keyed by the dataset table name."""
    ordered = sorted(set(tables), key=lambda item: (item[0], item[1] or ""))
    bases = {name: _base_name(name, sheet) for name, sheet in ordered}
    taken: set[str] = set()
    result: dict[str, str] = {}
    # Every plain base is claimed first, so a suffixed name can never take another table's plain name.
    for name, _sheet in ordered:
        if bases[name] not in taken:
            result[name] = bases[name]
            taken.add(bases[name])
    for name, _sheet in ordered:
        if name in result:
            continue
        suffix = 2
        while f"{bases[name]}_{suffix}" in taken:
            suffix += 1
        result[name] = f"{bases[name]}_{suffix}"
        taken.add(result[name])
    return result


def _base_name(name: str, sheet: str | None) -> str:
    file_name = name[: -len(sheet) - 1] if sheet is not None and name.endswith(f"#{sheet}") else name
    stem = os.path.splitext(file_name)[0]
    raw = f"{stem}_{sheet}" if sheet is not None else stem
    base = _identifier(raw) or "table"
    return f"t_{base}" if base[0].isdigit() or base in KEYWORDS else base


def _identifier(raw: str) -> str:
    decomposed = unicodedata.normalize("NFKD", raw)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return _OTHER_CHARACTERS.sub("_", ascii_only).strip("_")
