"""``python -m capacity`` (``make capacity``): question latency for 100 and 1,000 concurrent users under each
environment's Terraform sizing and the old one, beside one question alone (the floor), as Markdown."""

from __future__ import annotations

import argparse

from capacity.model import Report, floor, simulate
from capacity.settings import OLD_SIZING, settings_of
from capacity.workload import load_workload

USERS = (100, 1000)


def _row(label: str, report: Report) -> str:
    limits = ", ".join(report.bottlenecks) or "none"
    unfinished = f" ({report.unfinished} unfinished: at least)" if report.unfinished > report.questions // 20 else ""
    return (f"| {label} | {report.users:,} | {report.p50_s:.1f} s | {report.p95_s:.1f} s{unfinished} | "
            f"{report.p99_s:.1f} s | {report.queue_wait_p95_s:.2f} s | {report.peak_agents_instances} "
            f"({report.agents_cold_starts} cold starts) | {report.peak_stages_running} | {limits} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m capacity")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", default=",".join(map(str, USERS)), help="comma-separated user counts")
    args = parser.parse_args()
    workload = load_workload()
    sizings = {"prod": settings_of("prod"), "dev": settings_of("dev"), "old": OLD_SIZING}
    alone = floor(workload, sizings["prod"], seed=args.seed)
    print(f"One question alone (warm): p50 {alone.p50_s:.1f} s, p95 {alone.p95_s:.1f} s "
          f"(model call median {workload.model_median_s:g} s, sigma {workload.model_sigma:g}; "
          f"think time {workload.think_time_s:g} s; {workload.legacy_share:.0%} of users on POST /query)\n")
    for name, sizing in sizings.items():
        agents = sizing.services["agents"]
        print(f"- {name}: queue {sizing.dispatches_per_second:g}/s, {sizing.max_concurrent_dispatches} at once; "
              + "; ".join(f"{service} concurrency {size.concurrency}, instances {size.min_instances}-"
                          f"{size.max_instances}" for service, size in sizing.services.items())
              + f" (agents slots {agents.slots})")
    print("\n| settings | users | p50 | p95 | p99 | queue wait p95 | peak agents instances | peak stages running "
          "| bound by |\n|---|---|---|---|---|---|---|---|---|")
    for name, sizing in sizings.items():
        for users in (int(n) for n in args.users.split(",")):
            print(_row(name, simulate(workload, sizing, users, seed=args.seed)))


if __name__ == "__main__":
    main()
