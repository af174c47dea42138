"""The gate in front of DuckDB: model-written SQL is one read-only SELECT over the domain's tables, or nothing.

``check_sql`` parses with sqlglot (DuckDB dialect) and refuses, with the reason, anything but exactly one
SELECT/UNION/WITH query: no statement that writes, attaches, copies, configures or loads anywhere in the tree;
no table but the domain's own and the query's CTEs (no schema-qualified name, no file path, no table function
but ``range``/``generate_series``/``unnest``); no function that reaches files, the network, the session or the
catalogue. It then resolves identifiers to the schema's spelling and reads a double-quoted name that is no
column, table or alias as the string the model meant (``region = "North"``). What runs is sqlglot's
rendering of the checked tree, without comments, and that rendering is checked once more.

DuckDB itself runs with external access disabled and its configuration locked (``sql_engine``), so a query
that got past this gate still could not read a file or change a setting.

The gate does not judge cost. What a query may build (``repeat``, ``format`` widths, a concatenation doubled in
a recursive CTE...) and return is bounded where it is built and fetched: in a memory-capped process killed at
its deadline (``sql_process``) and by the result budget (``result_budget``). A list of expensive functions here
could never be complete, and would refuse queries that are cheap on small inputs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from common.errors import BadRequest

if TYPE_CHECKING:
    from sqlglot import exp


class SqlRejected(BadRequest):
    """The SQL breaks the policy; the message says how, so a model can repair it."""

    code = "SQL_REJECTED"


ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Families of DuckDB functions that read files, other databases or the catalogue, or touch the session.
DENIED_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_", "sqlite_", "postgres_",
                   "mysql_", "pg_", "json_execute", "st_read", "http_", "has_", "inet_", "__internal")
DENIED_SUFFIXES = ("_scan", "_attach", "_query", "_execute", "_metadata", "_secret", "_secrets",
                   "_extension", "_logging", "_profiling", "_resource", "_resource_type", "_description")
DENIED_FUNCTIONS = frozenset({
    "glob", "sniff_csv", "query", "query_table", "getenv", "getvariable", "current_setting", "current_query",
    "current_query_id", "current_connection_id", "current_transaction_id", "current_database",
    "current_catalog", "current_schema", "current_schemas", "current_role", "current_user", "session_user",
    "user", "in_search_path", "checkpoint", "force_checkpoint", "install", "load", "summary", "test_all_types",
    "test_vector_types", "python_map_function", "arrow_scan_dumb", "json_serialize_plan",
    "json_deserialize_sql", "nextval", "currval", "setval", "sleep_ms", "write_log", "parse_duckdb_log_message",
    "truncate_duckdb_logs", "icu_calendar_names", "get_block_size", "txid_current", "format_pg_type",
    "from_substrait", "from_substrait_json", "get_substrait", "dbgen", "dsdgen", "load_aws_credentials",
})

_STATEMENTS = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Command",
               "Copy", "Pragma", "Set", "Install", "Attach", "Detach", "Use", "Transaction", "Commit",
               "Rollback", "Describe", "Summarize", "Show", "Into", "LoadData", "Cache", "Uncache", "Refresh",
               "Analyze", "Export", "Grant", "Revoke", "Comment", "Kill", "Declare", "Execute", "DDL", "DML")
_BARE_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_CALL_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


class _Catalog:
    """The domain's tables and columns, looked up case-insensitively, answered in their own spelling."""

    def __init__(self, schema: dict[str, list[str]]):
        self.tables = {name.lower(): name for name in schema}
        self.columns = {name.lower(): {column.lower(): column for column in columns}
                        for name, columns in schema.items()}

    def listing(self) -> str:
        return ", ".join(sorted(self.tables.values())) or "(none)"


def check_sql(sql: str, schema: dict[str, list[str]]) -> str:
    """Return ``sql`` as the normalised DuckDB query to run, or raise ``SqlRejected`` saying why."""
    catalog = _Catalog(schema)
    tree = _parse(sql)
    references = _check(tree, catalog)
    _resolve_columns(tree, catalog, references)
    normalised = tree.sql(dialect="duckdb", comments=False)
    # What runs is this rendering, not the input: check it too, so no generator quirk can differ from the check.
    _check(_parse(normalised), catalog)
    return normalised


def tables_read(sql: str) -> set[str]:
    """Return the lower-cased names of the tables a checked query reads: the copies it needs, what an answer's
    provenance names.

    Every table reference counts, in subqueries and set operations too, except one that names a CTE visible
    where it stands (``WITH c AS (SELECT * FROM sales) SELECT * FROM c`` reads ``sales`` only; a CTE that
    shadows a table's name hides that table) and a table function (``range(3)``): the gate's own scoping.
    """
    from sqlglot import exp

    tree = _parse(sql)
    ctes = _cte_references(tree)
    return {table.name.lower() for table in tree.find_all(exp.Table)
            if id(table) not in ctes and isinstance(table.this, exp.Identifier) and not table.args.get("db")}


def _parse(sql: str) -> exp.Expression:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    if not isinstance(sql, str) or not sql.strip():
        raise SqlRejected("the SQL is empty")
    try:
        # A statement that is only a comment (``SELECT 1; -- done``) is a Semicolon node: nothing to run.
        statements = [statement for statement in sqlglot.parse(sql, read="duckdb")
                      if statement is not None and not isinstance(statement, exp.Semicolon)]
    except (ParseError, TokenError) as exc:
        raise SqlRejected(f"the SQL could not be parsed: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise SqlRejected("the SQL is nested too deeply") from None
    if len(statements) != 1:
        raise SqlRejected(f"exactly one statement is allowed, got {len(statements)}")
    return statements[0]


def _check(tree: exp.Expression, catalog: _Catalog) -> list[tuple[exp.Table, str]]:
    """Apply every rule; return each reference to a domain table with that table's name."""
    from sqlglot import exp

    query = tree
    while isinstance(query, exp.Subquery):
        query = query.this
    if not isinstance(query, (exp.Select, exp.SetOperation)):
        raise SqlRejected(f"only SELECT queries are allowed, got {_statement_name(query)}")
    forbidden = tuple(getattr(exp, name) for name in _STATEMENTS)
    for node in tree.find_all(*forbidden):
        what = "SELECT INTO" if isinstance(node, exp.Into) else _statement_name(node)
        raise SqlRejected(f"only read-only SELECT queries are allowed; found {what} inside the query")
    for function in tree.find_all(exp.Func):
        for name in _function_names(function):
            if _denied(name):
                raise SqlRejected(f"function {name} is not allowed")
    return _check_tables(tree, catalog)


def _statement_name(node: exp.Expression) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Column):
        return node.name.upper()
    return node.key.upper()


def _function_names(function: exp.Func) -> set[str]:
    from sqlglot import exp

    names = {function.name.lower() if isinstance(function, exp.Anonymous) else function.sql_name().lower()}
    # sqlglot's name for a function can differ from the one DuckDB will be sent; check both.
    rendered = _CALL_NAME.match(function.sql(dialect="duckdb", comments=False))
    if rendered:
        names.add(rendered.group(1).lower())
    return names


def _denied(name: str) -> bool:
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES) or name.endswith(DENIED_SUFFIXES)


def _check_tables(tree: exp.Expression, catalog: _Catalog) -> list[tuple[exp.Table, str]]:
    from sqlglot import exp

    cte_references = _cte_references(tree)
    references = []
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            if not _function_names(table.this) & ALLOWED_TABLE_FUNCTIONS:
                raise SqlRejected(f"table function {table.this.sql_name().lower()} is not allowed")
            continue
        if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
            raise SqlRejected(f"schema-qualified or computed table names are not allowed: "
                              f"{table.sql(dialect='duckdb')}; tables: {catalog.listing()}")
        if id(table) in cte_references:
            continue
        name = catalog.tables.get(table.name.lower())
        if name is None:
            raise SqlRejected(_unknown_table(table.name, catalog))
        table.set("this", _identifier(name, table.this.quoted))
        references.append((table, name.lower()))
    return references


def _cte_references(tree: exp.Expression) -> set[int]:
    """Return the ids of the table nodes that name a CTE visible where they stand."""
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.scope import traverse_scope

    # Scopes, not a global list of CTE names: outside its scope a CTE's name would reach DuckDB's catalogue.
    try:
        scopes = traverse_scope(tree)
    except SqlglotError as exc:
        raise SqlRejected(f"the query's structure could not be analysed: {str(exc).splitlines()[0]}") from None
    references = set()
    for scope in scopes:
        visible = {name.lower() for name in scope.cte_sources}
        references.update(id(table) for table in scope.tables if table.name.lower() in visible)
    return references


def _unknown_table(name: str, catalog: _Catalog) -> str:
    if any(mark in name for mark in "./\\*:"):
        return f"reading files is not allowed: {name!r} is not a table; tables: {catalog.listing()}"
    return f"unknown table {name!r}; tables: {catalog.listing()}"


def _resolve_columns(tree: exp.Expression, catalog: _Catalog, references: list[tuple[exp.Table, str]]) -> None:
    """Spell columns as the schema does; turn a double-quoted name that is nothing else into a string."""
    from sqlglot import exp

    by_qualifier: dict[str, str] = {}
    spellings: dict[str, set[str]] = {}
    for table, name in references:
        by_qualifier[(table.alias or table.name).lower()] = name
        for lower, column in catalog.columns[name].items():
            spellings.setdefault(lower, set()).add(column)
    declared = {identifier.name.lower() for identifier in tree.find_all(exp.Identifier)
                if not isinstance(identifier.parent, exp.Column)}
    for column in list(tree.find_all(exp.Column)):
        if not isinstance(column.this, exp.Identifier):
            continue
        if column.table:
            columns = catalog.columns.get(by_qualifier.get(column.table.lower(), ""), {})
            candidates = {columns[column.name.lower()]} if column.name.lower() in columns else set()
        else:
            candidates = spellings.get(column.name.lower(), set())
        if len(candidates) == 1:
            column.set("this", _identifier(next(iter(candidates)), column.this.quoted))
        elif (not candidates and not column.table and column.this.quoted
              and column.name.lower() not in declared and not isinstance(column.parent, exp.Star)):
            column.replace(exp.Literal.string(column.name))


def _identifier(name: str, quoted: bool) -> exp.Identifier:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=quoted or not _BARE_IDENTIFIER.fullmatch(name))
