"""`make bench`: the figures BENCHMARKS.md records. Prints a Markdown report; touches nothing but a temp dir.

Each figure is measured in this run on this machine, so compare ratios, not absolute numbers, across runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile

from tests.benchmarks import breakers, budgets, cold_start, latency, pipeline, readers, sql, stage_times, upload

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ("cold-start", "upload", "pipeline", "latency", "readers", "sql", "budgets", "stage-times", "breakers")


def machine() -> str:
    cores = os.cpu_count()
    with open("/proc/meminfo", encoding="utf-8") as handle:
        mem_kb = int(handle.readline().split()[1])
    return f"{platform.node()}: {cores} cores, {mem_kb / 2**20:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the upload benchmark's CSV")
    parser.add_argument("--repeat", type=int, default=5, help="cold starts per function")
    parser.add_argument("--legacy-python", default=os.environ.get("LEGACY_PYTHON", ""),
                        help="a Python with the original's import set (pandasai) for the comparison")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--write-stage-times", action="store_true",
                        help="stage-times: write the figures into capacity/stage_times.yaml (otherwise only printed)")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    if sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(sections - set(SECTIONS)))}")

    print(f"# make bench\n\nMachine: {machine()}\n")
    if "cold-start" in sections:
        report_cold_start(args.repeat, args.legacy_python or sys.executable)
    if "upload" in sections:
        report_upload(args.rows)
    if "pipeline" in sections:
        report_pipeline(pipeline.measure())
    if "latency" in sections:
        latency.report(latency.measure())
    if "readers" in sections:
        readers.report([readers.measure()])
    if "sql" in sections:
        with tempfile.TemporaryDirectory(prefix="bench-sql-") as workdir:
            report_sql(sql.measure(workdir))
    if "budgets" in sections:
        report_budgets(budgets.measure())
        sent, alive = budgets.survives_all()
        print(f"\nOne emulator sent every hostile request in turn: {sent} sent, still answering: {alive}")
    if "stage-times" in sections:
        stage_times.report(write=args.write_stage_times)
    if "breakers" in sections:
        breakers.report(breakers.measure())


def report_cold_start(repeat: int, legacy_python: str) -> None:
    print("## Cold start (import + first request, fresh process; median of "
          f"{repeat})\n\n| function | median s | min s |\n|---|---|---|")
    for name, samples in cold_start.measure_functions(repeat):
        print(f"| {name} | {statistics.median(samples):.3f} | {min(samples):.3f} |")
    for label, samples in cold_start.measure_legacy_imports(repeat, legacy_python):
        print(f"| {label} | {statistics.median(samples):.3f} | {min(samples):.3f} |")


def report_upload(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        result = upload.measure(workdir, rows=rows)
        direct = upload.measure_direct(workdir, os.path.join(workdir, "sales.csv"))
    print(f"\n## Upload of a {rows:,}-row, 10-column CSV through the emulator\n")
    print("| figure | value |\n|---|---|")
    print(f"| file size | {result.file_bytes / 1e6:.1f} MB |")
    print(f"| upload wall time | {result.upload_seconds:.2f} s |")
    print(f"| server peak RSS | {result.peak_rss_bytes / 1e6:.0f} MB ({result.peak_rss_bytes / result.file_bytes:.2f}x "
          f"the file; baseline before upload {result.baseline_rss_bytes / 1e6:.0f} MB) |")
    print(f"| 1,000-row preview, median of {len(result.preview_seconds)} | "
          f"{statistics.median(result.preview_seconds) * 1000:.1f} ms |")
    print(f"| direct upload (POST /api/v1/uploads): PUT, then commit | {direct.put_seconds:.2f} s + "
          f"{direct.commit_seconds:.2f} s |")
    print(f"| direct upload: server peak RSS | {direct.peak_rss_bytes / 1e6:.0f} MB "
          f"({direct.peak_rss_bytes / result.file_bytes:.2f}x the file) |")


def report_pipeline(result: pipeline.PipelineResult) -> None:
    latencies = sorted(result.latencies)
    print("\n## A question with instant scripted models, through the gateway and the local task dispatcher\n")
    print("| figure | value |\n|---|---|")
    print(f"| submit to succeeded, 100,000-row table, p50 of {len(latencies)} | "
          f"{statistics.median(latencies) * 1000:.0f} ms (p90 {latencies[int(0.9 * len(latencies))] * 1000:.0f} ms) |")
    print(f"| LLM calls per question | {result.calls_per_question:g} |")
    print(f"| the same question again (answer cache hit, no LLM call) | {result.cached_seconds * 1000:.0f} ms |")
    print(f"| PROMPT_TOKEN_BUDGET (table description per prompt) | {result.token_budget:,} |")
    report_tokens(result.prompt_tokens)


def report_tokens(prompt_tokens: dict[str, dict[str, dict[str, int]]]) -> None:
    print("\n| prompt tokens of one question | per agent | total | budget |\n|---|---|---|---|")
    for scenario, widths in prompt_tokens.items():
        for width, tokens in widths.items():
            per_agent = ", ".join(f"{agent} {count:,}" for agent, count in tokens.items())
            total, budget = sum(tokens.values()), pipeline.TOKEN_BUDGETS[width]
            print(f"| chart {scenario} ({pipeline.SCENARIOS[scenario]}), {width} table | {per_agent} | {total:,} | "
                  f"<= {budget:,}: {'met' if total <= budget else 'NOT met'} |")


def report_budgets(replays: list[budgets.Replay]) -> None:
    print("\n## Worst case of each guarded request class (issue 8's hostile requests, fresh emulator each)\n")
    print("| class | request | answer | time | server growth | response | budget |\n|---|---|---|---|---|---|---|")
    for replay in replays:
        print(f"| {replay.request_class} | {replay.request} | {replay.status} | {replay.seconds:.1f} s | "
              f"+{replay.growth_mb:.0f} MB | {replay.response_mb:.1f} MB | {replay.budget} |")


def report_sql(result: sql.SqlBenchResult) -> None:
    print(f"\n## SQL over a {result.rows:,}-row table (group-by aggregation, fresh process)\n")
    print("| figure | value |\n|---|---|")
    print(f"| wall time (policy check {result.check_ms:.0f} ms included) | {result.seconds:.2f} s |")
    peak, baseline = result.peak_rss_bytes / 1e6, result.baseline_rss_bytes / 1e6
    print(f"| process peak RSS | {peak:.0f} MB (baseline {baseline:.0f} MB; "
          f"DuckDB memory limit {result.memory_limit_mb} MB, {result.threads} threads) |")


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
