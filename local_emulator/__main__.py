"""Run every ConvoInsight function on one port: ``python -m local_emulator --help``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

# Before anything imports a Google or LiteLLM client: never probe the cloud metadata server, never download.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WARM_UP_WAIT_SECONDS = 60  # a slow machine serves after this, warm or not


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    """The emulator's command line (README.md lists every option; a test checks it does)."""
    parser = argparse.ArgumentParser(
        prog="python -m local_emulator",
        description="Serve every ConvoInsight function on one port with API Gateway's routing. Backends are "
                    "chosen by the same settings as in the cloud (STORAGE_BACKEND, METADATA_BACKEND, "
                    "DATABASE_URL, ...); the defaults need no cloud account: filesystem blobs, SQLite "
                    "metadata, in-memory cache, AUTH_MODE=dev.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--data-dir", default=None,
                        help="where blobs and the SQLite file live (default: DATA_DIR, else ./.local_data)")
    parser.add_argument("--threads", type=int, default=None,
                        help="requests served at once; each events stream holds one while it streams (default: 32)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="do not load the model library, chart renderer and SQL launcher before serving (memory "
                             "measurements that must see only their own requests)")
    parser.add_argument("--cleanup-interval", type=float, default=3600,
                        help="seconds between runs of the cleanup function, as Cloud Scheduler calls it "
                             "(default: 3600; 0 disables)")
    return parser


def _prepare_database(settings: Any) -> None:
    """Create DATABASE_URL's Postgres database when missing, or refuse to start saying why (not 503s later)."""
    from common.errors import ConfigurationError
    from common.metadata.sql_engine import ensure_database

    if settings.metadata_backend != "sql" or not settings.database_url or settings.cloud_sql_instance:
        return
    try:
        if ensure_database(settings.database_url):
            logging.getLogger("convoinsight.emulator").warning("created the metadata database named by DATABASE_URL")
    except ConfigurationError as exc:
        raise SystemExit(f"cannot start: {exc.message}") from None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from common import bootstrap, warm_up
    from common.config import Settings
    from local_emulator import http_server
    from local_emulator.scheduler import start_cleanup_timer
    from local_emulator.server import build_gateway, local_context

    overrides = {"data_dir": os.path.abspath(args.data_dir)} if args.data_dir else {}
    settings = Settings.from_env(**overrides)
    _prepare_database(settings)
    gateway = build_gateway()  # function modules build nothing at import: the context can come after
    context = local_context(settings, gateway.apps)
    bootstrap.use(context)
    if args.cleanup_interval > 0 and "cleanup" in gateway.apps:
        start_cleanup_timer(gateway.apps["cleanup"], args.cleanup_interval)
    if not args.no_warm_up:
        # The model library, chart renderer and SQL launcher load before the first request is served, so the first
        # question asked of a fresh emulator is as quick as any (cleanup, started above, runs meanwhile).
        warm_up.start()
        if not warm_up.done.wait(WARM_UP_WAIT_SECONDS):
            logging.getLogger("convoinsight.emulator").warning("still warming up; serving anyway")
    logging.getLogger("convoinsight.emulator").warning(
        "serving %s on http://%s:%d (data in %s)", ", ".join(gateway.apps), args.host, args.port,
        os.path.abspath(settings.data_dir))
    try:
        http_server.serve(gateway, args.host, args.port, args.threads or http_server.DEFAULT_THREADS)
    finally:
        context.close()


if __name__ == "__main__":
    main()
