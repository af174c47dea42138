"""Postgres tables for questions: ``pg:`` tokens loaded through the read-only path, capped, into Parquet."""

from __future__ import annotations

import polars as pl
import pytest

from common import bootstrap, errors
from common.analysis.sql_policy import SqlRejected
from common.auth import Tenant
from common.services.postgres.questions import load_for_question
from tests.integration import test_postgres_api as shared
from tests.integration.test_postgres_api import AWKWARD_ROWS, AWKWARD_TABLE, connection_body

# The shared fixtures, made visible to pytest in this module.
key_a, main, pg_ctx, pg_schema, pg_url = shared.key_a, shared.main, shared.pg_ctx, shared.pg_schema, shared.pg_url


@pytest.fixture
def default(alice, main, pg_url, pg_schema):
    """Alice's connection 'default' (the original API's tokens use it) to the same schema, with a second table."""
    alice.request("POST", "/api/v1/postgres/connections", json=connection_body(pg_url, pg_schema, name="default"))
    rows = [{"id": n, "amount": n * 1.5} for n in range(1, 8)]
    assert alice.request("POST", "/api/v1/postgres/default/tables",
                         json={"table": "orders", "rows": rows}).status_code == 201


def load(pg_ctx, tokens, tmp_path, *, user="alice", **settings):
    ports = bootstrap.build(pg_ctx.settings.replace(**settings), clock=pg_ctx.clock, metadata=pg_ctx.metadata)
    return load_for_question(ports, Tenant(user), tokens, str(tmp_path / "work"))


def test_tokens_load_tables_and_queries_as_parquet(pg_ctx, default, tmp_path):
    tables = load(pg_ctx, [f"pg:main:{AWKWARD_TABLE}", "pg:table:orders",
                           "pg:query:big_orders|select id, amount from orders where amount > 6 order by id"], tmp_path)
    by_name = {table.sql_name: table for table in tables}
    assert set(by_name) == {"sales_2024_order_u", "orders", "big_orders"}
    awkward = by_name["sales_2024_order_u"]
    assert (awkward.source, awkward.table, awkward.rows, awkward.truncated) == \
        (f"pg:main:{AWKWARD_TABLE}", AWKWARD_TABLE, 2, False)
    assert pl.read_parquet(awkward.path).to_dicts() == AWKWARD_ROWS
    assert [column["name"] for column in awkward.columns] == list(AWKWARD_ROWS[0])
    query = by_name["big_orders"]
    assert query.source == "pg:default:query:big_orders" and query.table is None
    assert pl.read_parquet(query.path)["id"].to_list() == [5, 6, 7]


def test_wildcards_load_every_table_with_a_row_cap(pg_ctx, default, tmp_path):
    tables = load(pg_ctx, ["pg:*", "pg:main:*"], tmp_path, pg_max_rows=3)
    assert sorted((table.connection, table.table) for table in tables) == [
        ("default", AWKWARD_TABLE), ("default", "orders"), ("main", AWKWARD_TABLE), ("main", "orders")]
    orders = next(table for table in tables if table.table == "orders")
    assert (orders.rows, orders.truncated) == (3, True)
    assert len({table.sql_name for table in tables}) == 4  # unique names even for the same table twice


@pytest.mark.parametrize("tokens,error", [
    (["pg:main:no such table"], errors.NotFound),
    (["pg:nobody:orders"], errors.NotFound),
    (["pg:query:q|delete from orders"], SqlRejected),
    (["pg:query:q|select * from pg_catalog.pg_authid"], SqlRejected),
    (["pg:main"], errors.BadRequest),
    (["pg:table:orders", "sales.csv"], errors.BadRequest),
])
def test_bad_tokens_and_unknown_tables_are_refused(pg_ctx, default, tmp_path, tokens, error):
    with pytest.raises(error):
        load(pg_ctx, tokens, tmp_path)


def test_another_tenants_connection_is_not_found(pg_ctx, default, tmp_path):
    with pytest.raises(errors.NotFound):
        load(pg_ctx, ["pg:main:orders"], tmp_path, user="bob")
