"""Session history on a real metadata store: one record per turn, idempotent, ordered, tenant-owned."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from common import errors
from common.auth import Tenant
from common.clock import FakeClock
from common.metadata.sql import SqlMetadataStore
from common.metadata.sql_engine import create_engine_for
from common.services import sessions


@pytest.fixture
def clock():
    return FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


@pytest.fixture
def store(tmp_path, clock):
    return SqlMetadataStore(create_engine_for("", data_dir=str(tmp_path)), clock=clock)


def ask(store, clock, query_id, prompt, *, tenant="alice", session="s1"):
    clock.advance(1)
    sessions.record_turns(store, Tenant(tenant), session_id=session, domain="sales", query_id=query_id, prompt=prompt,
                          answer={"answer_markdown": f"answer to {prompt}", "chart": {"kind": "bar"}},
                          now=clock.now())


def test_turns_are_kept_in_order_with_the_full_answer(store, clock):
    ask(store, clock, "q1", "revenue by region")
    ask(store, clock, "q2", "now by month")
    turns = sessions.history(store, Tenant("alice"), "s1")
    assert [(t["role"], t["content"]) for t in turns] == [
        ("user", "revenue by region"), ("assistant", "answer to revenue by region"),
        ("user", "now by month"), ("assistant", "answer to now by month")]
    assert turns[1]["answer"]["chart"] == {"kind": "bar"}
    assert [t["content"] for t in sessions.history(store, Tenant("alice"), "s1", last=2)] == \
        ["now by month", "answer to now by month"]


def test_a_retried_stage_writes_no_second_turn(store, clock):
    ask(store, clock, "q1", "revenue by region")
    ask(store, clock, "q1", "revenue by region")
    assert len(sessions.history(store, Tenant("alice"), "s1")) == 2


def test_concurrent_questions_lose_no_turn(store, clock):
    threads = [threading.Thread(target=ask, args=(store, clock, f"q{i}", f"question {i}")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sessions.history(store, Tenant("alice"), "s1")) == 16


def test_sessions_are_listed_newest_first_and_owned(store, clock):
    ask(store, clock, "q1", "first", session="s1")
    ask(store, clock, "q2", "second", session="s2")
    assert [r.key for r in sessions.list_sessions(store, Tenant("alice"))] == ["s2", "s1"]
    assert sessions.get_session(store, Tenant("alice"), "s1").data["title"] == "first"
    assert sessions.list_sessions(store, Tenant("bob")) == []
    with pytest.raises(errors.NotFound):
        sessions.get_session(store, Tenant("bob"), "s1")
    assert sessions.history(store, Tenant("bob"), "s1") == []


def test_delete_removes_the_session_and_its_turns(store, clock):
    ask(store, clock, "q1", "first")
    assert sessions.delete_session(store, Tenant("alice"), "s1") == 2
    assert sessions.history(store, Tenant("alice"), "s1") == []
    with pytest.raises(errors.NotFound):
        sessions.delete_session(store, Tenant("alice"), "s1")
