"""``make eval``: ask the bundled questions through the real pipeline and report accuracy, calls, rounds,
tokens, cost and latency. ``python -m evaluation --help`` lists the options."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

# Before anything imports LiteLLM or a Google client (the emulator child inherits these too).
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from evaluation.cases import CASES, select  # noqa: E402 - after the offline switches above
from evaluation.client import Api, Emulator, HarnessError  # noqa: E402
from evaluation.reference import reference_tables  # noqa: E402
from evaluation.report import build_report, exit_code, markdown  # noqa: E402
from evaluation.runner import CaseResult, run_cases, upload_data, warm_up  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation",
        description="Ask the bundled questions (evaluation/cases.py) over the bundled data through the real HTTP "
                    "API of a local emulator started on loopback with its own temporary DATA_DIR, using the "
                    "model the environment configures (LLM_DEFAULT_MODEL + LLM_DEFAULT_API_KEYS, or "
                    "LLM_API_BASE), and print a Markdown report.")
    parser.add_argument("--url", help="ask a server already running there instead (AUTH_MODE=dev; it must not "
                                      "rate-limit or cache answers)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument("--min-accuracy", type=float, metavar="PERCENT",
                        help="exit with 1 when the accuracy is below PERCENT (default: always exit 0)")
    parser.add_argument("--only", metavar="IDS", help="comma-separated case ids (with their conversations' "
                                                      "earlier turns)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one question may take (default 300)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; return the exit code."""
    args = parse_args(argv)
    try:
        cases = select(args.only.split(",") if args.only else None)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    if args.list:
        for case in CASES:
            print(f"{case.id:28} {case.kind:9} {case.topic:15} {case.prompt}")
        return 0
    model = os.environ.get("LLM_DEFAULT_MODEL", "")
    if not model and not args.url:
        print("set LLM_DEFAULT_MODEL (and LLM_DEFAULT_API_KEYS, or LLM_API_BASE) first, e.g.\n"
              "  LLM_DEFAULT_MODEL=gemini/gemini-2.5-flash LLM_DEFAULT_API_KEYS=gemini=... make eval",
              file=sys.stderr)
        return 2
    references = reference_tables(cases)
    try:
        with Emulator() if not args.url else contextlib.nullcontext() as emulator:
            api = Api(args.url or emulator.url)
            upload_data(api, cases)
            warm_up(api, cases[0].domain, args.timeout)
            results = run_cases(api, cases, references, timeout=args.timeout, on_result=_progress)
    except HarnessError as error:
        print(f"evaluation could not run: {error}", file=sys.stderr)
        return 2
    report = build_report(results, model=model or "(the server's default model)", target=args.url or "emulator")
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return exit_code(report, args.min_accuracy)


def _progress(result: CaseResult) -> None:
    # A real model takes minutes for the whole set: show each answer as it comes, away from the report.
    verdict = "correct" if result.correct else f"WRONG: {result.why_not}"
    print(f"{result.id}: {verdict} ({result.latency_s:.1f} s, {result.calls} calls)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
