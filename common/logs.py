"""Log records as Cloud Logging reads them: one JSON object per line, with severity and the request's trace.

Cloud Functions (Cloud Run) turns each stdout/stderr line into a log entry. A plain text line arrives with
no severity, so an ERROR is not filterable as one and Error Reporting never sees the traceback, and lines of
one request cannot be told from another's. With ``LOG_FORMAT=json`` (the cloud's setting) each record is a
structured entry: ``severity``, ``message`` (with the traceback appended, which Error Reporting groups on),
the logger's name, the request id every response carries in ``X-Request-Id``, and the trace the load
balancer started (``X-Cloud-Trace-Context``), so Logs Explorer shows a request's lines together.

The router (common/http.py) sets the request's ids with ``request_scope`` for the time it handles it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

_REQUEST: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("request_ids", default=("", ""))
_LEVELS = {"WARNING": "WARNING", "CRITICAL": "CRITICAL", "ERROR": "ERROR", "INFO": "INFO", "DEBUG": "DEBUG"}


def trace_id_of(headers: Any) -> str:
    """The trace id Google's front end put on the request (``X-Cloud-Trace-Context``, else ``traceparent``)."""
    cloud = headers.get("X-Cloud-Trace-Context") or ""
    trace_id = cloud.split("/", 1)[0].strip()
    if not trace_id:
        parts = (headers.get("traceparent") or "").split("-")
        trace_id = parts[1] if len(parts) == 4 else ""
    return trace_id if trace_id.isalnum() and len(trace_id) <= 64 else ""  # never trust a header into a log key


@contextlib.contextmanager
def request_scope(request_id: str, trace_id: str) -> Iterator[None]:
    """Tag every record logged while a request is handled with its id and trace."""
    token = _REQUEST.set((request_id, trace_id))
    try:
        yield
    finally:
        _REQUEST.reset(token)


class CloudLoggingFormatter(logging.Formatter):
    """Format a record as one line of JSON in Cloud Logging's structured-log shape."""

    def __init__(self, project: str = ""):
        super().__init__()
        self._project = project

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        entry = {
            "severity": _LEVELS.get(record.levelname, "DEFAULT"),
            "message": message,
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {"file": record.pathname, "line": str(record.lineno),
                                                      "function": record.funcName},
        }
        fields = getattr(record, "fields", None)  # log.info(..., extra={"fields": {...}}): jsonPayload to query
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in entry})
        request_id, trace_id = _REQUEST.get()
        if request_id:
            entry["request_id"] = request_id
        if trace_id and self._project:
            entry["logging.googleapis.com/trace"] = f"projects/{self._project}/traces/{trace_id}"
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str, log_format: str, project: str = "") -> None:
    """Set the root logger up once per process: plain text locally, structured JSON in the cloud."""
    root = logging.getLogger()
    root.setLevel(level)
    if log_format != "json":
        if not root.handlers:
            logging.basicConfig(level=level)
        return
    if any(isinstance(handler.formatter, CloudLoggingFormatter) for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(project))
    # A plain text handler left beside it would print every record twice, once without severity.
    root.handlers = [h for h in root.handlers if type(h) is not logging.StreamHandler] + [handler]
