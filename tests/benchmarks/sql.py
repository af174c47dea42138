"""SQL over a 10,000,000-row dataset: a group-by aggregation's wall time and its process's peak memory.

The Parquet file is written here, in this process; the query runs in a fresh process (as an instance would
serve it: check with the policy, register the file as an Arrow dataset that DuckDB streams, run in DuckDB with
the default limits), which reports its own high-water mark (``VmHWM``) next to the configured DuckDB memory limit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUERY = """
SELECT region, date_trunc('month', order_date) AS month, COUNT(*) AS orders, SUM(units) AS units,
       SUM(revenue) AS revenue, AVG(unit_price) AS avg_price
FROM sales
WHERE NOT returned
GROUP BY ALL
ORDER BY region, month
"""


@dataclasses.dataclass(frozen=True)
class SqlBenchResult:
    rows: int
    parquet_bytes: int
    seconds: float  # policy check + load + query, wall time, in the fresh process
    check_ms: float
    baseline_rss_bytes: int  # the fresh process after its imports, before the query
    peak_rss_bytes: int  # that process's VmHWM
    memory_limit_mb: int
    threads: int
    result_rows: int


def write_parquet(path: str, rows: int) -> None:
    """Write a realistic 8-column sales table (7 regions, 5 years of days) as Parquet."""
    import polars as pl

    index = pl.col("order_id")
    regions = ["North", "South", "East", "West", "Central", "Coastal", "Highlands"]
    frame = pl.DataFrame({"order_id": pl.int_range(0, rows, eager=True)}).with_columns(
        order_date=pl.date(2020, 1, 1) + pl.duration(days=(index * 7919) % 1826),
        region=(index % 7).replace_strict(dict(enumerate(regions)), return_dtype=pl.String),
        product=pl.format("Product {}", index % 997),
        units=(index * 7919) % 50 + 1,
        unit_price=((index * 104729) % 10000) / 100.0,
        revenue=((index * 1299709) % 5000000) / 100.0,
        returned=index % 13 == 0,
    )
    frame.write_parquet(path)


def measure(workdir: str, rows: int = 10_000_000) -> SqlBenchResult:
    """Write the table, then time the aggregation and read the peak RSS of a fresh process that runs it."""
    path = os.path.join(workdir, "sales.parquet")
    write_parquet(path, rows)
    env = {**os.environ, "PYTHONPATH": ROOT}
    completed = subprocess.run([sys.executable, "-m", "tests.benchmarks.sql", path], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"the SQL benchmark process failed: {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return SqlBenchResult(rows=rows, parquet_bytes=os.path.getsize(path), **report)


def _memory_kb(field: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


def _run_in_this_process(path: str) -> dict:
    from common.config import Settings

    settings = Settings.from_env({})
    # As bootstrap does for every instance, before Polars is imported.
    os.environ["POLARS_MAX_THREADS"] = str(settings.polars_max_threads)
    import duckdb  # noqa: F401 - imported before the baseline, as a warm instance has it
    import polars  # noqa: F401

    from common.analysis.sql_engine import SqlLimits, run_sql
    from common.analysis.sql_policy import check_sql

    limits = SqlLimits.from_settings(settings)
    columns = list(polars.read_parquet_schema(path))
    baseline = _memory_kb("VmRSS") * 1024
    started = time.perf_counter()
    checked = check_sql(QUERY, {"sales": columns})
    check_ms = (time.perf_counter() - started) * 1000
    result = run_sql(checked, {"sales": path}, limits)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "check_ms": check_ms, "baseline_rss_bytes": baseline,
            "peak_rss_bytes": _memory_kb("VmHWM") * 1024, "memory_limit_mb": limits.memory_limit_mb,
            "threads": limits.threads, "result_rows": result.row_count}


if __name__ == "__main__":
    print(json.dumps(_run_in_this_process(sys.argv[1])))
