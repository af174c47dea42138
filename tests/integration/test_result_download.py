"""A question's whole result table as a download (CSV, XLSX, Parquet), and the domain SQL endpoint's ``?format=``:
run again over the dataset versions the answer read, within a download budget of its own, streamed.

Through the functions as deployed (the gateway's routing, the queries and datasets functions), on local
backends, with the scripted models: the answer's SQL is what the planner was scripted to write.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import urllib.parse

import polars as pl
import pytest

from common.services import query_jobs
from tests.conftest import require_service
from tests.integration import test_pipeline_postgres
from tests.integration.conftest import assert_error
from tests.memory import peak_growth

ROWS = 3000
SALES = ("id,amount,region,day,seen_at,flag\n" + "".join(
    f"{n},{n * 1.25},{('North', 'South', 'Zürich')[n % 3]},{dt.date(2024, 1, 1) + dt.timedelta(days=n % 300)},"
    f"2024-03-04 05:06:{n % 60:02d},{'true' if n % 2 else 'false'}\n" for n in range(ROWS))).encode()
ALL_SALES = "SELECT * FROM sales ORDER BY id"
warehouse = test_pipeline_postgres.warehouse  # the fixture, made visible to pytest in this module
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def extra_settings() -> dict:
    # An answer holds at most 100 rows: the download is what gives the rest.
    return {"sql_max_rows": 100}


def answered(pipeline, analyst, sql: str = ALL_SALES, prompt: str = "List every sale", **fields) -> str:
    analyst.sql.append(sql)
    analyst.plan["chart"] = "none"  # the table is what these tests download
    body = pipeline.wait(pipeline.ask(prompt, **fields)["query_id"])
    assert body["status"] == "succeeded", body.get("error")
    return body["query_id"]


def download(pipeline, query_id: str, fmt: str | None = "csv", user: str = "alice"):
    query = f"?format={fmt}" if fmt is not None else ""
    return pipeline.call("GET", f"/api/v1/queries/{query_id}/result{query}", user=user)


def frame(response, fmt: str) -> pl.DataFrame:
    data = io.BytesIO(response.get_data())
    if fmt == "csv":
        return pl.read_csv(data, try_parse_dates=True)
    return {"parquet": pl.read_parquet, "xlsx": pl.read_excel}[fmt](data)


def use_settings(pipeline, **values) -> None:
    pipeline.context.settings = pipeline.context.settings.replace(**values)


# The result, whole, in each format ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_the_whole_result_downloads_past_the_answers_row_cap_with_its_types(pipeline, analyst, fmt):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst)
    answer = pipeline.call("GET", f"/api/v1/queries/{query_id}").get_json()["answer"]
    assert answer["table"]["row_count"] == 100 and answer["table"]["truncated"]

    response = download(pipeline, query_id, fmt)
    assert response.status_code == 200, response.get_data()[:500]
    assert response.headers["X-Result-Rows"] == str(ROWS) and response.headers["X-Result-Truncated"] == "false"
    assert response.headers["Content-Disposition"] == f'attachment; filename="List every sale.{fmt}"'
    assert response.headers["Content-Length"] == str(len(response.get_data()))
    got = frame(response, fmt)
    assert got.height == ROWS and got.columns == ["id", "amount", "region", "day", "seen_at", "flag"]
    assert got["id"].to_list() == list(range(ROWS))
    assert got["amount"].to_list() == [n * 1.25 for n in range(ROWS)]
    assert got["region"][2] == "Zürich"
    assert got["day"][299] == dt.date(2024, 10, 26) and got["seen_at"][7] == dt.datetime(2024, 3, 4, 5, 6, 7)
    assert got["flag"].to_list()[:2] == [False, True]
    if fmt != "csv":  # numbers stay numbers, dates dates, booleans booleans (CSV is text: read back as typed)
        assert got.schema["id"].is_integer() and got.schema["amount"] == pl.Float64
        assert got.schema["day"] == pl.Date and isinstance(got.schema["seen_at"], pl.Datetime)
        assert got.schema["flag"] == pl.Boolean


def test_the_file_is_named_after_the_question_with_an_rfc_5987_name_for_non_ascii(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst, prompt="Umsätze nach Région / Kunde: 2024?")
    disposition = download(pipeline, query_id, "xlsx").headers["Content-Disposition"]
    assert disposition == ('attachment; filename="Umsatze nach Region Kunde 2024.xlsx"; '
                           "filename*=UTF-8''" + urllib.parse.quote("Umsätze nach Région Kunde 2024.xlsx", safe=""))


def test_csv_is_the_default_format_and_an_unknown_one_is_a_400(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst)
    plain = download(pipeline, query_id, None)
    assert plain.status_code == 200 and plain.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert plain.get_data().startswith(b"id,amount,region,day,seen_at,flag\n0,0.0,North,2024-01-01,")
    error = assert_error(download(pipeline, query_id, "xls"), 400, "UNSUPPORTED_FORMAT")
    assert error["details"]["accepted"] == ["csv", "xlsx", "parquet"]


# The same dataset versions, or a clear refusal ---------------------------------------------------------------


def test_a_dataset_replaced_since_the_answer_is_409_and_one_deleted_is_410(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    pipeline.upload("sales", name="targets.csv", content=b"region,target\nNorth,1\n")
    query_id = answered(pipeline, analyst)
    pipeline.upload("sales", name="targets.csv", content=b"region,target\nNorth,2\n")
    assert download(pipeline, query_id).status_code == 200  # a dataset the SQL did not read changes nothing

    pipeline.upload("sales", content=SALES.replace(b"North", b"Nord"))
    error = assert_error(download(pipeline, query_id), 409, "DATASET_REPLACED")
    assert error["details"]["dataset"] == "sales.csv" and "ask the question again" in error["message"]
    assert pipeline.call("DELETE", "/api/v1/datasets/sales/sales.csv").status_code == 200
    assert assert_error(download(pipeline, query_id), 410, "DATASET_DELETED")["details"]["dataset"] == "sales.csv"


def test_a_table_added_since_does_not_change_which_table_the_sql_name_reads(pipeline, analyst):
    pipeline.upload("sales", name="sales.csv", content=SALES)
    query_id = answered(pipeline, analyst, sql="SELECT COUNT(*) AS n FROM sales")
    # "Sales.csv" sorts first and would now take the SQL name "sales" (sales.csv becomes sales_2).
    pipeline.upload("sales", name="Sales.csv", content=b"id\n1\n")
    assert frame(download(pipeline, query_id), "csv")["n"].to_list() == [ROWS]


def test_an_answer_from_the_cache_downloads_over_the_versions_it_records(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    use_settings(pipeline, answer_cache_ttl_seconds=3600)
    by_region = "SELECT region, COUNT(*) AS n FROM sales GROUP BY 1 ORDER BY 1"
    answered(pipeline, analyst, sql=by_region, prompt="Sales by region")
    cached = answered(pipeline, analyst, sql="SELECT 'not asked' AS x", prompt="Sales by region")
    job = query_jobs.get_job(pipeline.context.metadata, _alice(), cached)
    assert job.answer.cached and job.result is None  # no model call, no result of its own: the cached answer's
    assert frame(download(pipeline, cached), "csv")["n"].to_list() == [1000, 1000, 1000]
    pipeline.upload("sales", content=SALES + b"3000,1.0,North,2024-01-01,2024-03-04 05:06:00,true\n")
    assert_error(download(pipeline, cached), 409, "DATASET_REPLACED")


def test_an_answer_stored_before_answers_listed_their_reads_downloads_from_its_result(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst, sql="SELECT region, COUNT(*) AS n FROM sales GROUP BY 1 ORDER BY 1")

    def older(job):  # its result names the tables read; its provenance, every dataset of the domain
        job.result.read = None
        job.answer.provenance = {"datasets": {**job.answer.provenance["datasets"], "other.csv": "0"},
                                 "model": job.answer.provenance["model"]}
        return job

    query_jobs.update_job(pipeline.context.metadata, _alice(), query_id, older)
    assert frame(download(pipeline, query_id), "csv")["n"].to_list() == [1000, 1000, 1000]

    def oldest(job):  # a reused result of that time: nothing says what it read
        job.result.tables, job.result.reused = {}, True
        return job

    query_jobs.update_job(pipeline.context.metadata, _alice(), query_id, oldest)
    assert_error(download(pipeline, query_id), 409, "READS_NOT_RECORDED")


# Who may download what, and when ------------------------------------------------------------------------------


def test_another_tenants_query_is_404_a_running_one_409_and_an_answer_without_sql_404(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst)
    assert assert_error(download(pipeline, query_id, user="bob"), 404, "QUERY_NOT_FOUND")
    assert_error(download(pipeline, "q_nothing_here"), 404, "QUERY_NOT_FOUND")

    analyst.plan["scope"] = "small_talk"
    chat = pipeline.wait(pipeline.ask("hello")["query_id"])["query_id"]
    assert "no result table" in assert_error(download(pipeline, chat), 404, "NO_RESULT")["message"]

    metadata, alice = pipeline.context.metadata, _alice()
    for status, code in (("running", "QUERY_NOT_FINISHED"), ("failed", "QUERY_NOT_SUCCEEDED")):
        def moved(job, status=status):
            job.status = status
            return job

        query_jobs.update_job(metadata, alice, query_id, moved)
        assert_error(download(pipeline, query_id), 409, code)


def test_downloads_count_against_the_sql_rate_limit(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst)
    use_settings(pipeline, rate_limits="sql=2/minute")
    pipeline.context.__dict__.pop("rate_limiter", None)  # built again from the new rule
    assert [download(pipeline, query_id).status_code for _ in range(2)] == [200, 200]
    assert_error(download(pipeline, query_id), 429, "RATE_LIMITED")


# The budget ---------------------------------------------------------------------------------------------------


def test_over_the_row_or_byte_budget_is_413_before_any_byte(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst)
    use_settings(pipeline, result_download_max_rows=ROWS - 1)
    error = assert_error(download(pipeline, query_id), 413, "RESULT_TOO_LARGE")
    assert error["details"] == {"format": "csv", "max_rows": ROWS - 1}
    use_settings(pipeline, result_download_max_rows=ROWS, result_download_max_bytes=20_000)
    for fmt in ("csv", "xlsx", "parquet"):
        error = assert_error(download(pipeline, query_id, fmt), 413, "RESULT_TOO_LARGE")
        assert error["details"]["max_bytes"] == 20_000 and error["details"]["format"] == fmt


def test_two_million_rows_stream_in_bounded_memory(pipeline, analyst):
    rows = 2_000_000
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst, sql=f"SELECT range AS id, range * 0.5 AS amount, 'region ' || "
                                               f"(range % 7) AS region FROM range({rows})")
    assert_error(download(pipeline, query_id), 413, "RESULT_TOO_LARGE")  # the default budget: a million rows

    use_settings(pipeline, result_download_max_rows=rows, result_download_max_bytes=256 * 1024 * 1024)
    download(pipeline, "q_warm_up")  # this route's imports are not the download's memory

    def fetch() -> tuple[int, int, bytes]:
        response = pipeline.client.open(f"/api/v1/queries/{query_id}/result?format=csv", method="GET",
                                         headers={"X-User-Id": "alice"}, buffered=False)
        assert response.status_code == 200
        size = lines = 0
        tail = b""
        for chunk in response.response:  # read as a client does, a chunk at a time
            size, lines, tail = size + len(chunk), lines + chunk.count(b"\n"), (tail + chunk)[-64:]
        response.close()
        return size, lines, tail

    (size, lines, tail), growth = peak_growth(fetch)
    assert lines == rows + 1 and tail.endswith(f"{rows - 1},{(rows - 1) * 0.5},region {(rows - 1) % 7}\n".encode())
    assert size > 40 * 1024 * 1024
    assert growth < 40 * 1024 * 1024, f"the serving process grew {growth / 2**20:.0f} MB for {size / 2**20:.0f} MB"


# Hostile SQL: the policy and the process caps of every query ---------------------------------------------------


def test_a_stored_sql_is_checked_by_the_policy_again(pipeline, analyst):
    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst)

    def tampered(job):
        job.answer.sql = "SELECT * FROM read_csv('/etc/passwd')"
        return job

    query_jobs.update_job(pipeline.context.metadata, _alice(), query_id, tampered)
    assert_error(download(pipeline, query_id), 400, "SQL_REJECTED")


@pytest.mark.parametrize(("sql", "status", "code"), [
    ("SELECT length(repeat('x', 2000000000)) AS n", 400, "SQL_TOO_EXPENSIVE"),
    ("SELECT len(range(300000000)) AS n", 400, "SQL_TOO_EXPENSIVE"),
    ("SELECT repeat('x', 1000000) AS s FROM range(10000)", 400, "SQL_TOO_EXPENSIVE"),  # 2 GB a batch
    ("SELECT repeat('x', 10000) AS s FROM range(100000)", 413, "RESULT_TOO_LARGE"),  # 1 GB in all
    ("SELECT * FROM read_csv('/etc/passwd')", 400, "SQL_REJECTED"),
])
def test_hostile_domain_sql_downloads_are_refused_within_the_process_caps(pipeline, sql, status, code):
    pipeline.upload("sales", content=SALES)
    use_settings(pipeline, sql_memory_limit_mb=256)
    refused, growth = peak_growth(lambda: pipeline.call("POST", "/api/v1/domains/sales/sql?format=csv",
                                                        json={"sql": sql}))
    assert_error(refused, status, code)
    assert growth < 100 * 1024 * 1024  # the query's own process holds the memory, capped, and gives it back


# The domain SQL endpoint's ?format= ---------------------------------------------------------------------------


def test_domain_sql_downloads_with_format_and_answers_json_without(pipeline):
    pipeline.upload("sales", content=SALES)
    path = "/api/v1/domains/sales/sql"
    body = {"sql": "SELECT id, day FROM sales WHERE id < 50 ORDER BY id"}
    as_json = pipeline.call("POST", path, json=body)
    assert as_json.status_code == 200 and as_json.get_json()["row_count"] == 50
    assert pipeline.call("POST", f"{path}?format=json", json=body).get_json()["rows"] == as_json.get_json()["rows"]

    whole = pipeline.call("POST", f"{path}?format=xlsx", json=body)
    assert whole.status_code == 200 and whole.headers["Content-Type"] == XLSX
    assert whole.headers["Content-Disposition"] == 'attachment; filename="sales result.xlsx"'
    got = frame(whole, "xlsx")
    assert got["id"].to_list() == list(range(50)) and got.schema["day"] == pl.Date

    first = pipeline.call("POST", f"{path}?format=parquet", json={**body, "limit": 20})
    assert first.headers["X-Result-Rows"] == "20" and first.headers["X-Result-Truncated"] == "true"
    assert frame(first, "parquet")["id"].to_list() == list(range(20))
    sqlite = pipeline.call("POST", f"{path}?format=csv", json={"sql": "SELECT id FROM sales LIMIT 3",
                                                               "dialect": "sqlite"})
    assert sqlite.get_data() == b"id\n0\n1\n2\n"

    assert_error(pipeline.call("POST", f"{path}?format=xls", json=body), 400, "UNSUPPORTED_FORMAT")
    assert "for a download" in assert_error(pipeline.call("POST", f"{path}?format=csv", json={**body, "limit": 0}),
                                            400)["message"]
    assert_error(pipeline.call("POST", "/api/v1/domains/nowhere/sql?format=csv", json=body), 404, "DOMAIN_NOT_FOUND")


# One instance's downloads at once -----------------------------------------------------------------------------


def test_an_instance_prepares_a_few_downloads_at_once_and_gives_each_slot_back(pipeline, analyst, monkeypatch):
    from common import downloads

    pipeline.upload("sales", content=SALES)
    query_id = answered(pipeline, analyst)
    use_settings(pipeline, result_download_concurrency=1)
    monkeypatch.setattr(downloads, "SLOT_WAIT_SECONDS", 0.2)
    assert [download(pipeline, query_id).status_code for _ in range(3)] == [200, 200, 200]  # each gave it back

    slot = downloads._slots_for(1)
    assert slot.acquire(timeout=1)  # a download in progress elsewhere on this instance
    try:
        assert_error(download(pipeline, query_id), 503, "DOWNLOADS_BUSY")
    finally:
        slot.release()
    refused = threading.Event()

    def failing():  # a refused download gives its slot back too
        refused.set()
        return download(pipeline, "q_nothing_here")

    assert failing().status_code == 404 and refused.is_set()
    assert download(pipeline, query_id).status_code == 200


# Postgres --------------------------------------------------------------------------------------------------------


def test_a_question_pushed_down_to_postgres_is_refused_and_one_over_loaded_tables_downloads(warehouse, analyst,
                                                                                           unique_prefix):
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    analyst.default_sql = "SELECT region, SUM(revenue) AS revenue FROM orders GROUP BY region ORDER BY region"
    pushed = warehouse.wait(warehouse.ask("Revenue by region", domain="ops",
                                          datasets=["pg:warehouse:orders"])["query_id"])["query_id"]
    error = assert_error(download(warehouse, pushed), 409, "LIVE_POSTGRES_RESULT")
    assert "POST /api/v1/postgres/warehouse/query" in error["message"]

    warehouse.upload("ops", name="targets.csv", content=b"region,target\nNorth,200\nSouth,100\n")
    analyst.default_sql = ("SELECT o.region, SUM(o.revenue) AS revenue, MAX(t.target) AS target FROM orders o "
                           "JOIN targets t USING (region) GROUP BY o.region ORDER BY o.region")
    loaded = warehouse.wait(warehouse.ask("Revenue against target", domain="ops",
                                          datasets=["targets.csv", "pg:warehouse:orders"])["query_id"])["query_id"]
    admin = sa.create_engine(make_url(require_service("TEST_POSTGRES_URL", "PostgreSQL")), poolclass=NullPool)
    with admin.begin() as connection:  # Postgres changes after the answer: the download reads what it read
        connection.exec_driver_sql(f"INSERT INTO \"q_{unique_prefix}\".orders VALUES ('South', 1000)")
    admin.dispose()
    got = frame(download(warehouse, loaded, "parquet"), "parquet")
    assert got.rows() == [("North", 250.0, 200), ("South", 80.0, 100)]


def _alice():
    from common.auth import Tenant

    return Tenant("alice")
