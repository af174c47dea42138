"""Audit records without a store: what a record may carry, and the log line the audit sink selects."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from common import logs
from common.audit import events, trail
from common.audit.listing import decode_cursor, encode_cursor


def test_details_keep_only_allowlisted_names_and_short_scalars():
    details = events.safe_details({"provider": "gemini", "api_key": "sk-secret", "password": "hunter2",
                                   "fields": ["instructions", {"nested": "x"}], "name": "n" * 500,
                                   "deleted_count": 3, "rows": [[1, 2]], "created": True, "code": 1.5})
    assert details == {"provider": "gemini", "fields": ["instructions"], "name": "n" * events.MAX_DETAIL_CHARS,
                       "deleted_count": 3, "created": True}


def test_an_action_or_outcome_outside_the_vocabulary_is_refused():
    base = dict(tenant_id="a", actor="a", resource="r", status=200, request_id="", client="",
                at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(ValueError):
        events.AuditEvent(action="llm_key.peek", outcome="success", **base)
    with pytest.raises(ValueError):
        events.AuditEvent(action="llm_key.save", outcome="maybe", **base)


def test_iso_text_sorts_as_time_does():
    moments = [dt.datetime(2026, 1, 1, 0, 0, 0, micro, tzinfo=dt.UTC) for micro in (0, 5, 999999)]
    moments.append(dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))))  # 2025-12-31T23:00Z
    assert sorted(moments) == sorted(moments, key=events.iso)
    assert events.parse_iso(events.iso(moments[1])) == moments[1]


def test_a_cursor_round_trips_and_a_forged_one_is_400():
    key = "2026-01-01T00:00:00.000000Z-000000000001-abc"
    assert decode_cursor(encode_cursor(key)) == key
    with pytest.raises(Exception, match="cursor"):
        decode_cursor("!!!!")


def test_a_refusal_is_one_json_line_a_sink_can_select(capsys):
    handler = logging.StreamHandler()
    handler.setFormatter(logs.CloudLoggingFormatter("proj"))
    trail.log.addHandler(handler)
    try:
        with trail.request_origin("req-1", "10.0.0.1", "203.0.113.9"):
            trail.log_refusal("auth.refused", 401, code="UNAUTHENTICATED", method="GET", path="/api/v1/llm/keys")
    finally:
        trail.log.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["logger"] == "convoinsight.audit" and line["audit"] is True and line["audit_stored"] is False
    assert line["severity"] == "WARNING"
    event = line["audit_event"]
    assert (event["action"], event["outcome"], event["status"]) == ("auth.refused", "refused", 401)
    assert event["request_id"] == "req-1" and event["client"] == "203.0.113.9, 10.0.0.1"


def test_a_stored_action_cannot_be_logged_as_a_refusal_nor_a_refusal_stored():
    with pytest.raises(ValueError):
        trail.log_refusal("llm_key.delete", 403, code="X", method="GET", path="/")
    with pytest.raises(ValueError):
        trail.record(None, "alice", "rate_limit.refused", "r")  # type: ignore[arg-type]
