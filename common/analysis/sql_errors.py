"""The errors a SQL query's author can fix, shared by DuckDB, Postgres and the result budget.

Each is a 400 with a code the manipulator agent reacts to (a BadRequest goes back to it as a repair hint). Not
408 for a timeout: browsers and proxies retry a 408 on their own, which would run the same expensive query
again; and not 422: the code already says what kind of problem it is, and in every case the remedy is to send
a different query.
"""

from __future__ import annotations

from common import errors


class SqlError(errors.BadRequest):
    """The engine refused or failed the query (binder, catalog, conversion errors...)."""

    code = "SQL_ERROR"


class SqlTimeout(errors.BadRequest):
    code = "SQL_TIMEOUT"


class SqlTooExpensive(errors.BadRequest):
    """The query needs more memory, or returns a bigger value, than the limits allow."""

    code = "SQL_TOO_EXPENSIVE"
