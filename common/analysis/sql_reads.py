"""Which tables a query reads: what an answer's provenance names, and which copies a pushdown needs.

Every table reference counts, in subqueries and set operations too, except one that names a CTE visible
where it stands (``WITH c AS (SELECT * FROM sales) SELECT * FROM c`` reads ``sales`` only; a CTE that
shadows a table's name hides that table) and a table function (``range(3)``).
"""

from __future__ import annotations


def tables_read(sql: str) -> set[str]:
    """Return the lower-cased names of the tables a checked DuckDB query reads (CTEs are not tables)."""
    from sqlglot import exp

    # The policy's own parser and CTE scoping, so what counts as a read here is what the gate let through.
    from common.analysis.sql_policy import _cte_references, _parse

    tree = _parse(sql)
    ctes = _cte_references(tree)
    return {table.name.lower() for table in tree.find_all(exp.Table)
            if id(table) not in ctes and isinstance(table.this, exp.Identifier) and not table.args.get("db")}
