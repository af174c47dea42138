"""The local stand-in for Cloud Scheduler: POST to the cleanup function on a timer, as the cloud job does."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("convoinsight.emulator")


def start_cleanup_timer(cleanup_app: Any, interval_seconds: float) -> threading.Event:
    """Call the cleanup function every ``interval_seconds`` in a daemon thread; set the event to stop."""
    stop = threading.Event()

    def run() -> None:
        client = cleanup_app.test_client()
        while not stop.wait(interval_seconds):
            response = client.post("/cleanup")
            if response.status_code != 200:
                log.warning("scheduled cleanup failed: %s %s", response.status_code, response.get_data()[:200])

    threading.Thread(target=run, name="cleanup-scheduler", daemon=True).start()
    return stop
