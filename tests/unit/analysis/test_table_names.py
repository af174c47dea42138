"""SQL table names: readable, unique, stable, and always writable bare in the SQL the model produces."""

from __future__ import annotations

import duckdb
import pytest

from common.analysis.sql_policy import check_sql
from common.analysis.table_names import table_names


@pytest.mark.parametrize("name,sheet,expected", [
    ("Sales 2024.csv", None, "sales_2024"),
    ("book.xlsx#Q1", "Q1", "book_q1"),
    ("Book.xlsx#Sheet 1", "Sheet 1", "book_sheet_1"),
    ("my-data.v2.parquet", None, "my_data_v2"),
    ("  --weird__name--.json", None, "weird_name"),
    ("Ventes été.csv", None, "ventes_ete"),
    ("2024 sales.csv", None, "t_2024_sales"),
    ("order.csv", None, "t_order"),
    ("销售.csv", None, "t_table"),
    ("noextension", None, "noextension"),
    ("file.xlsx#a#b", "a#b", "file_a_b"),
])
def test_name_follows_the_rule(name, sheet, expected):
    assert table_names([(name, sheet)]) == {name: expected}


def test_collisions_get_numbered_suffixes_in_sorted_order():
    tables = [("sales.json", None), ("Sales.csv", None), ("sales.csv", None)]
    assert table_names(tables) == {"Sales.csv": "sales", "sales.csv": "sales_2", "sales.json": "sales_3"}


def test_names_do_not_depend_on_input_order():
    tables = [("b.csv", None), ("a.csv", None), ("A.csv", None), ("book.xlsx#Q1", "Q1"), ("book_q1.csv", None)]
    assert table_names(tables) == table_names(list(reversed(tables)))


def test_a_suffix_never_takes_another_tables_plain_name():
    names = table_names([("a.csv", None), ("a.json", None), ("a_2.csv", None)])
    assert names == {"a.csv": "a", "a_2.csv": "a_2", "a.json": "a_3"}
    assert len(set(names.values())) == 3


def test_sheet_and_file_stems_that_meet_are_told_apart():
    names = table_names([("book.xlsx#Q1", "Q1"), ("book_q1.csv", None)])
    assert sorted(names.values()) == ["book_q1", "book_q1_2"]


def test_every_keyword_file_gets_a_name_duckdb_and_sqlglot_accept_bare():
    connection = duckdb.connect()
    keywords = [row[0] for row in connection.execute("SELECT keyword_name FROM duckdb_keywords()").fetchall()]
    refused = []
    for keyword in keywords:
        name = table_names([(f"{keyword}.csv", None)])[f"{keyword}.csv"]
        connection.execute(f'CREATE TABLE "{name}" AS SELECT 1 AS x')
        try:
            assert connection.execute(check_sql(f"SELECT x FROM {name} WHERE x = 1", {name: ["x"]})).fetchall()
        except Exception as exc:  # noqa: BLE001 - collect every refused name, not just the first
            refused.append(f"{keyword} -> {name}: {exc}")
        connection.execute(f'DROP TABLE "{name}"')
    assert len(keywords) > 400 and not refused, refused
