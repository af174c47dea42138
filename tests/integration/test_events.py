"""A question's event stream: the answer's text while it is written, every event with an id, a reconnect that
resumes after it without losing or repeating anything, an idle stream kept alive, and a stream that ends itself
(telling the client to reconnect) before the timeout."""

from __future__ import annotations

import json

import pytest

from common.auth import Tenant
from common.services import query_jobs
from common.services.pipeline import events
from common.services.pipeline.answer_stream import AnswerStream
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


def order(event_id: str) -> tuple[int, int]:
    revision, _, pieces = event_id.partition(":")
    return int(revision), int(pieces or 0)


def test_every_event_has_an_id_and_the_stream_ends_with_the_answer(sales, analyst):
    analyst.answer = "**Bottom line:** North made 250, South 80, so North leads by 170 over the whole period."
    submitted = sales.ask("Compare revenue by region")
    sent = parse(sales.call("GET", submitted["events_url"]).get_data(as_text=True))
    assert sent[0] == {"retry": "1000"}
    named = [event for event in sent if "event" in event]
    assert [order(event["id"]) for event in named] == sorted(order(event["id"]) for event in named)
    assert len({event["id"] for event in named}) == len(named)
    assert named[-1]["event"] == "end" and json.loads(named[-1]["data"])["status"] == "succeeded"
    # The answer's text came as it was written (the scripted model streams a few words per piece), before the
    # end, and the pieces joined are the stored answer.
    deltas = [json.loads(event["data"])["text"] for event in named if event["event"] == "answer_delta"]
    assert "".join(deltas) == json.loads(named[-1]["data"])["answer"]["answer_markdown"] == analyst.answer
    assert [order(event["id"])[1] for event in named if event["event"] == "answer_delta"] == list(
        range(1, len(deltas) + 1))


def test_a_reconnect_in_the_middle_of_the_answer_loses_and_repeats_no_piece(sales, analyst):
    queued_job(sales, "q_pieces")
    context = sales.context  # the answer's stage is running: its pieces are being written
    query_jobs.claim_stage(context.metadata, Tenant("alice"), "q_pieces", "compile", now=context.clock.now(),
                           lease_seconds=60)
    sales.context.settings = sales.context.settings.replace(events_stream_seconds=1)
    writer = AnswerStream(sales.context.cache, Tenant("alice"), "q_pieces", clock=lambda: 0.0)  # flushes on ask
    for text in ("North ", "leads "):
        writer.write(text)
        writer.flush()
    first = [event for event in parse(sales.call("GET", "/api/v1/queries/q_pieces/events").get_data(as_text=True))
             if "event" in event]
    assert [event["event"] for event in first] == ["answer_delta", "answer_delta", "progress", "reconnect"]
    writer.write("with 250.")
    writer.restart()  # the model call failed after writing: the client must drop what it has
    writer.write("North leads.")
    writer.flush()
    again = [event for event in parse(sales.call("GET", "/api/v1/queries/q_pieces/events",
                                                 headers={"Last-Event-ID": first[-1]["id"]}).get_data(as_text=True))
             if "event" in event]
    assert [(event["event"], event["data"]) for event in again] == [
        ("answer_restart", "{}"), ("answer_delta", '{"text": "North leads."}'), ("reconnect", '{"retry_ms": 1000}')]
    assert [order(event["id"]) for event in again] == [(order(first[-1]["id"])[0], n) for n in (3, 4, 4)]
    query_jobs.release_stage(context.metadata, Tenant("alice"), "q_pieces", "compile")  # given back: cancels at once
    assert sales.call("DELETE", "/api/v1/queries/q_pieces").get_json()["status"] == "cancelled"


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
    assert kinds == ["end"] and all(int(event["id"]) > int(seen) for event in last if "id" in event)
    ended = parse(sales.call("GET", f"/api/v1/queries/q_resume/events?last_event_id={last[-1]['id']}")
                  .get_data(as_text=True))
    assert ended == [{"retry": "1000"}]  # everything, the end included, was seen already


def test_an_idle_stream_is_kept_alive_with_pings(sales, analyst):
    queued_job(sales, "q_idle")
    text = "".join(events.stream(sales.context, Tenant("alice"), "q_idle", seconds=1.2, ping_seconds=0.3))
    assert text.count(": ping\n\n") >= 2 and "event: reconnect" in text


@pytest.mark.parametrize("last_event_id,revision,pieces", [
    ("", 0, 0), ("garbage", 0, 0), ("-5", 0, 0), ("9" * 40, 0, 0), ("12:3", 12, 3), ("12", 12, 0),
    ("12:x", 12, 0), ("12:" + "9" * 40, 12, 0)])
def test_an_unknown_last_event_id_is_read_as_none_or_what_it_says(last_event_id, revision, pieces):
    assert (events.after_revision(last_event_id), events.after_pieces(last_event_id)) == (revision, pieces)
