"""SQL as models and people write it: read any dialect sqlglot knows, write DuckDB, and say what changed.

``to_duckdb`` transpiles before the policy check (``sql_policy.check_sql``), so the policy judges exactly the
DuckDB SQL that will run, whatever dialect it came from. After transpiling it rewrites one idiom DuckDB refuses
but SQLite and MySQL accept: a selected column that is neither grouped nor aggregated. SQLite documents what such
a bare column means next to a lone MIN or MAX (the value from the row holding that min or max), so that case
becomes ``arg_min``/``arg_max``; any other bare column becomes ``ANY_VALUE`` (a value from the group, as MySQL
and SQLite give). Each rewrite is described, so the caller can show the user what ran and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.analysis.sql_policy import SqlRejected
from common.errors import BadRequest

if TYPE_CHECKING:
    from sqlglot import exp

DEFAULT_DIALECT = "duckdb"
_FILTERED: tuple[type, ...] = ()  # set on first use: sqlglot is imported lazily


def accepted_dialects() -> tuple[str, ...]:
    """Return the names of every dialect sqlglot reads, sorted."""
    from sqlglot.dialects.dialect import Dialects

    return tuple(sorted(dialect.value for dialect in Dialects if dialect.value))


def dialect_name(dialect: object) -> str:
    """Check a request's ``dialect`` (default DuckDB); refuse an unknown one naming the accepted ones."""
    if dialect is None:
        return DEFAULT_DIALECT
    accepted = accepted_dialects()
    if not isinstance(dialect, str) or dialect.strip().lower() not in accepted:
        raise BadRequest(f"unknown SQL dialect {dialect!r}; accepted: {', '.join(accepted)}",
                         code="UNKNOWN_DIALECT")
    return dialect.strip().lower()


def to_duckdb(sql: str, dialect: str = DEFAULT_DIALECT) -> tuple[str, list[str]]:
    """Return ``sql`` (written in ``dialect``) as DuckDB SQL and the rewrites made to it."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [statement for statement in sqlglot.parse(sql, read=dialect)
                      if statement is not None and not isinstance(statement, exp.Semicolon)]
    except SqlglotError as exc:
        raise SqlRejected(f"the SQL could not be parsed as {dialect}: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise SqlRejected("the SQL is nested too deeply") from None
    if len(statements) != 1:
        # Left to the policy, which refuses it with its own message; nothing is rewritten.
        return sql, []
    rewrites = [] if dialect == DEFAULT_DIALECT else [f"transpiled from {dialect} to duckdb"]
    tree = statements[0]
    bare = _rewrite_bare_columns(tree)
    if dialect == DEFAULT_DIALECT and not bare:
        return sql, []  # the DuckDB text goes to the policy as written, as it always has
    try:
        return tree.sql(dialect="duckdb", comments=False), rewrites + bare
    except SqlglotError as exc:
        raise SqlRejected(f"the SQL could not be written as DuckDB: {str(exc).splitlines()[0]}") from None


def _rewrite_bare_columns(tree: exp.Expression) -> list[str]:
    """Wrap each selected column that is neither grouped nor aggregated; describe each wrap."""
    from sqlglot import exp

    rewrites: list[str] = []
    for select in list(tree.find_all(exp.Select)):
        rewrites.extend(_rewrite_select(select))
    return rewrites


def _rewrite_select(select: exp.Select) -> list[str]:
    from sqlglot import exp

    aggregates = [node for projection in select.expressions for node in _own_nodes(projection, exp.AggFunc)]
    group = select.args.get("group")
    if (not group and not aggregates) or (group and group.args.get("all")):
        return []  # GROUP BY ALL groups by every column that is not aggregated: none is bare
    grouped_sql, grouped_names, positions = _grouping(group)
    aliases = {projection.alias.lower() for projection in select.expressions if projection.alias}
    wrap = _wrapper(aggregates)
    rewrites = []
    for index, projection in enumerate(select.expressions, start=1):
        inner = projection.unalias()
        if (index in positions or (projection.alias and projection.alias.lower() in grouped_names)
                or inner.sql().lower() in grouped_sql or isinstance(inner, exp.Star)):
            continue
        for column in _own_nodes(inner, exp.Column):
            name = column.name.lower()
            if (isinstance(column.this, exp.Star) or name in grouped_names or column.sql().lower() in grouped_sql
                    or (not column.table and name in aliases)):
                continue
            wrapped = wrap(column.copy())
            if column is inner:  # keep the result's heading: the column's name, not the wrapper's
                projection.replace(exp.alias_(wrapped, exp.to_identifier(column.name, quoted=column.this.quoted)))
            else:
                column.replace(wrapped)
            rewrites.append(f"column {column.sql()} is neither grouped nor aggregated: read as {wrapped.sql()}")
    return rewrites


def _own_nodes(node: exp.Expression, kind: type) -> list:
    """Return the ``kind`` nodes of ``node`` outside aggregates, windows and subqueries (its own level)."""
    from sqlglot import exp

    global _FILTERED
    _FILTERED = _FILTERED or (exp.Filter, exp.WithinGroup)
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, kind) or (kind is exp.AggFunc and isinstance(current, _FILTERED)):
            found.append(current)  # a filtered aggregate (FILTER, WITHIN GROUP) counts as one, never a MIN/MAX
            continue
        if isinstance(current, (exp.Window, exp.Subquery, exp.Select, exp.AggFunc, *_FILTERED)):
            continue
        stack.extend(child for child in current.iter_expressions())
    return found


def _grouping(group: exp.Group | None) -> tuple[set[str], set[str], set[int]]:
    """Return the GROUP BY's expressions (as SQL), its plain column names, and its positions."""
    from sqlglot import exp

    expressions = group.expressions if group else []
    grouped_sql = {expression.sql().lower() for expression in expressions}
    names = {expression.name.lower() for expression in expressions if isinstance(expression, exp.Column)}
    positions = {int(expression.this) for expression in expressions
                 if isinstance(expression, exp.Literal) and expression.is_int}
    return grouped_sql, names, positions


def _wrapper(aggregates: list):
    """Return how to wrap a bare column: ``arg_min``/``arg_max`` beside a lone MIN/MAX, else ANY_VALUE."""
    from sqlglot import exp

    if len(aggregates) == 1 and isinstance(aggregates[0], (exp.Min, exp.Max)) \
            and not aggregates[0].expressions:
        kind = exp.ArgMin if isinstance(aggregates[0], exp.Min) else exp.ArgMax
        target = aggregates[0].this
        return lambda column: kind(this=column, expression=target.copy())
    return lambda column: exp.AnyValue(this=column)

