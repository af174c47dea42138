"""A question's event stream: every event has an id, a reconnect resumes after it without repeating, an idle
stream is kept alive, and the stream ends itself (telling the client to reconnect) before the timeout."""

from __future__ import annotations

import json

import pytest

from common.auth import Tenant
from common.services import query_jobs
from common.services.pipeline import events
from common.services.pipeline.job import JobRequest


@pytest.fixture
def sales(pipeline):
    pipeline.upload("sales")
    return pipeline


def parse(text: str) -> list[dict]:
    """The SSE text as events: {event, id, data} (comments as {"comment": ...})."""
    parsed = []
    for block in filter(None, text.split("\n\n")):
        fields: dict = {}
        for line in block.splitlines():
            if line.startswith(":"):
                fields["comment"] = line[1:].strip()
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        parsed.append(fields)
    return parsed


def queued_job(sales, query_id: str) -> None:
    """A question waiting in the queue with no task to run it: its stream has nothing to say until it changes."""
    context = sales.context
    query_jobs.create_job(context.metadata, Tenant("alice"), query_id=query_id, session_id="s_events",
                          domain="sales", prompt="Compare revenue by region",
                          request=JobRequest(model_id="scripted/model"), now=context.clock.now())


def test_every_event_has_an_id_and_the_stream_ends_with_the_answer(sales, analyst):
    submitted = sales.ask("Compare revenue by region")
    sent = parse(sales.call("GET", submitted["events_url"]).get_data(as_text=True))
    assert sent[0] == {"retry": "1000"}
    named = [event for event in sent if "event" in event]
    assert all(event["id"].isdigit() for event in named)
    assert [int(event["id"]) for event in named] == sorted(int(event["id"]) for event in named)
    assert named[-1]["event"] == "end" and json.loads(named[-1]["data"])["status"] == "succeeded"


def test_a_reconnect_resumes_after_the_last_event_it_saw(sales, analyst):
    queued_job(sales, "q_resume")
    sales.context.settings = sales.context.settings.replace(events_stream_seconds=1)
    first = parse(sales.call("GET", "/api/v1/queries/q_resume/events").get_data(as_text=True))
    assert [event.get("event") for event in first if "event" in event] == ["progress", "reconnect"]
    seen = first[-1]["id"]
    again = parse(sales.call("GET", "/api/v1/queries/q_resume/events",
                             headers={"Last-Event-ID": seen}).get_data(as_text=True))
    assert [event.get("event") for event in again if "event" in event] == ["reconnect"]  # nothing new: no repeat
    assert sales.call("DELETE", "/api/v1/queries/q_resume").get_json()["status"] == "cancelled"
    last = parse(sales.call("GET", "/api/v1/queries/q_resume/events",
                            headers={"Last-Event-ID": seen}).get_data(as_text=True))
    kinds = [event["event"] for event in last if "event" in event]
    assert kinds == ["progress", "end"] and all(int(event["id"]) > int(seen) for event in last if "id" in event)
    ended = parse(sales.call("GET", f"/api/v1/queries/q_resume/events?last_event_id={last[-1]['id']}")
                  .get_data(as_text=True))
    assert ended == [{"retry": "1000"}]  # everything, the end included, was seen already


def test_an_idle_stream_is_kept_alive_with_pings(sales, analyst):
    queued_job(sales, "q_idle")
    text = "".join(events.stream(sales.context, Tenant("alice"), "q_idle", seconds=1.2, ping_seconds=0.3))
    assert text.count(": ping\n\n") >= 2 and "event: reconnect" in text


@pytest.mark.parametrize("last_event_id", ["", "garbage", "-5", "9" * 40, "12:3"])
def test_an_unknown_last_event_id_is_read_as_none_or_its_revision(last_event_id):
    expected = 12 if last_event_id == "12:3" else 0
    assert events.after_revision(last_event_id) == expected
