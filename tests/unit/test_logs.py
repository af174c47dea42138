"""Structured logs: one JSON entry per record, with severity, the traceback, the request id and its trace."""

from __future__ import annotations

import io
import json
import logging

import flask
import pytest

from common import logs
from common.http import Router


@pytest.fixture
def captured():
    """The root logger writing JSON to a buffer, as configure sets it up in the cloud."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.CloudLoggingFormatter(project="test-proj"))
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def test_a_record_is_one_json_line_with_severity_and_traceback(captured):
    log = logging.getLogger("convoinsight.test")
    log.warning("slow %s", "stage")
    try:
        raise ValueError("broken \n on two lines")
    except ValueError:
        log.exception("stage failed")
    warning, error = captured()
    assert warning["severity"] == "WARNING" and warning["message"] == "slow stage"
    assert warning["logger"] == "convoinsight.test" and warning["time"].endswith("+00:00")
    assert error["severity"] == "ERROR" and "Traceback" in error["message"] and "ValueError" in error["message"]
    assert "request_id" not in error and "logging.googleapis.com/trace" not in error


def test_records_inside_a_request_carry_its_id_and_trace(captured):
    router = Router("probe")

    @router.route("/probe", methods=["GET"])
    def probe(request):
        logging.getLogger("convoinsight.probe").info("inside")
        raise RuntimeError("boom")

    app = flask.Flask("probe")
    app.add_url_rule("/<path:rest>", "any", lambda rest: router(flask.request))
    logging.getLogger("convoinsight.probe").setLevel(logging.INFO)
    response = app.test_client().get("/probe", headers={
        "X-Request-Id": "req-1", "X-Cloud-Trace-Context": "4bf92f3577b34da6a3ce929d0e0e4736/1;o=1"})
    assert response.status_code == 500 and response.headers["X-Request-Id"] == "req-1"
    inside, failure = [entry for entry in captured() if entry["logger"] in ("convoinsight.probe", "convoinsight.http")]
    for entry in (inside, failure):
        assert entry["request_id"] == "req-1"
        assert entry["logging.googleapis.com/trace"] == "projects/test-proj/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    assert failure["severity"] == "ERROR" and "RuntimeError: boom" in failure["message"]
    logging.getLogger("probe-after").error("outside")
    assert "request_id" not in captured()[-1]  # the scope ended with the request


@pytest.mark.parametrize(("headers", "trace_id"), [
    ({"X-Cloud-Trace-Context": "abc123/456;o=1"}, "abc123"),
    ({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "4bf92f3577b34da6a3ce929d0e0e4736"),
    ({"X-Cloud-Trace-Context": "../../evil/1"}, ""),
    ({"traceparent": "garbage"}, ""),
    ({}, ""),
])
def test_the_trace_id_comes_from_googles_headers_and_nothing_else(headers, trace_id):
    assert logs.trace_id_of(headers) == trace_id


def test_configure_replaces_plain_text_output_once():
    root = logging.getLogger()
    before = list(root.handlers)
    plain = logging.StreamHandler(io.StringIO())
    root.addHandler(plain)
    try:
        logs.configure("INFO", "json", "test-proj")
        logs.configure("INFO", "json", "test-proj")
        structured = [h for h in root.handlers if isinstance(h.formatter, logs.CloudLoggingFormatter)]
        assert len(structured) == 1 and plain not in root.handlers
    finally:
        root.handlers = before


def test_an_unreachable_backend_is_a_warning_and_a_bug_an_error_with_its_traceback(captured):
    from common import errors

    router = Router("probe")

    @router.route("/down", methods=["GET"])
    def down(request):
        raise errors.UpstreamError("cannot reach db.example:5432", code="PG_UNREACHABLE")

    @router.route("/bug", methods=["GET"])
    def bug(request):
        return {}["missing"]

    app = flask.Flask("probe")
    app.add_url_rule("/<path:rest>", "any", lambda rest: router(flask.request))
    client = app.test_client()
    assert client.get("/down").status_code == 502 and client.get("/bug").status_code == 500
    down_entry, bug_entry = [entry for entry in captured() if entry["logger"] == "convoinsight.http"]
    assert down_entry["severity"] == "WARNING" and "Traceback" not in down_entry["message"]
    assert "cannot reach db.example:5432" in down_entry["message"]
    assert bug_entry["severity"] == "ERROR" and "KeyError" in bug_entry["message"]


def test_structured_fields_become_queryable_keys_without_overriding_the_entrys_own(captured):
    logging.getLogger("convoinsight.test").warning(
        "question done", extra={"fields": {"event": "question_finished", "cost_usd": 0.0012, "severity": "x"}})
    [entry] = captured()
    assert entry["event"] == "question_finished" and entry["cost_usd"] == 0.0012 and entry["severity"] == "WARNING"
