"""Questions over a user's own Postgres tables: loaded with a row cap into the same engine, same policy."""

from __future__ import annotations

import pytest

from tests.conftest import require_service


@pytest.fixture
def warehouse(pipeline, unique_prefix):
    """Alice's saved connection 'warehouse' to a fresh schema holding an orders table."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(require_service("TEST_POSTGRES_URL", "PostgreSQL"))
    schema = f"q_{unique_prefix}"
    admin = sa.create_engine(url, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(sa.schema.CreateSchema(schema))
        connection.exec_driver_sql(f'CREATE TABLE "{schema}".orders (region text, revenue numeric)')
        connection.exec_driver_sql(f"INSERT INTO \"{schema}\".orders VALUES ('North', 120), ('South', 80), "
                                   "('North', 130)")
    for name in ("warehouse", "default"):
        saved = pipeline.call("POST", "/api/v1/postgres/connections", json={
            "name": name, "host": url.host, "port": url.port or 5432, "dbname": url.database,
            "user": url.username, "password": "unused-with-trust-auth", "sslmode": "disable", "schema": schema})
        assert saved.status_code == 201, saved.get_json()
    yield pipeline
    with admin.begin() as connection:
        connection.execute(sa.schema.DropSchema(schema, cascade=True))
    admin.dispose()


def test_a_question_over_a_postgres_table(warehouse, analyst, unique_prefix):
    analyst.default_sql = "SELECT region, SUM(revenue) AS revenue FROM orders GROUP BY region ORDER BY region"
    body = warehouse.wait(warehouse.ask("Revenue by region", domain="ops", datasets=["pg:warehouse:orders"])[
        "query_id"])
    assert body["status"] == "succeeded", body
    assert [(row["region"], float(row["revenue"])) for row in body["answer"]["table"]["rows"]] == \
        [("North", 250.0), ("South", 80.0)]
    assert body["answer"]["provenance"]["datasets"] == {"pg:warehouse:orders": "live"}
    assert body["answer"]["provenance"]["tables"] == [  # the Postgres table by its schema-qualified name
        {"table_name": "orders", "dataset": "pg:warehouse:orders", "table": f"q_{unique_prefix}.orders",
         "sheet": None, "version": "live"}]
    job = warehouse.context.metadata.get("queries", "alice", body["query_id"]).data
    assert job["result"]["engine"] == "postgres"  # every table lives in one connection: pushed down
    planner_prompt = next(m[-1]["content"] for agent, m, _ in analyst.calls if agent == "planner")
    assert "TABLE orders" in planner_prompt


def test_a_postgres_table_beside_an_uploaded_one_keeps_both_names(warehouse, analyst):
    warehouse.upload("ops", name="orders.csv", content=b"region,target\nNorth,200\n")
    analyst.default_sql = ("SELECT o.region, SUM(o.revenue) AS revenue, MAX(t.target) AS target FROM pg_orders o "
                           "JOIN orders t USING (region) GROUP BY o.region")
    body = warehouse.wait(warehouse.ask("Revenue against target", domain="ops",
                                        datasets=["orders.csv", "pg:warehouse:orders"])["query_id"])
    assert body["status"] == "succeeded", body
    assert body["answer"]["table"]["rows"][0]["target"] == 200
    job = warehouse.context.metadata.get("queries", "alice", body["query_id"]).data
    assert job["result"]["engine"] == "duckdb"  # an uploaded table joins in: loaded into the same engine
    version = warehouse.call("GET", "/api/v1/datasets/ops/orders.csv?n=0").get_json()["version"]
    assert body["answer"]["provenance"]["datasets"] == {"orders.csv": version, "pg:warehouse:orders": "live"}
    assert [(t["table_name"], t["dataset"], t["version"]) for t in body["answer"]["provenance"]["tables"]] == [
        ("orders", "orders.csv", version), ("pg_orders", "pg:warehouse:orders", "live")]


def test_the_original_pg_object_on_query(warehouse, analyst):
    analyst.default_sql = "SELECT region, SUM(revenue) AS revenue FROM orders GROUP BY region ORDER BY region"
    response = warehouse.call("POST", "/query", json={"domain": "ops", "prompt": "Revenue by region",
                                                      "userId": "alice", "pg": {"tables": ["orders"]}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sql"].startswith("SELECT")


def test_another_tenants_connection_cannot_be_named(warehouse, analyst):
    response = warehouse.call("POST", "/api/v1/queries", user="bob",
                              json={"domain": "ops", "prompt": "x", "datasets": ["pg:warehouse:orders"]})
    body = response.get_json() if response.status_code != 202 else warehouse.wait(response.get_json()["query_id"],
                                                                                    user="bob")
    assert (response.status_code == 404) or (body["status"] == "failed" and "warehouse" in body["error"]["message"])
    assert analyst.agents_called() == []  # refused before any model call
