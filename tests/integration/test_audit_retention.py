"""AUDIT_RETENTION_DAYS: the cleanup function deletes audit records older than it, of every tenant, and no
others; and a key's first use is recorded once however many instances use it at once."""

from __future__ import annotations

import datetime as dt
import threading

from common import bootstrap
from common.audit import COLLECTION, FIRST_USED_FIELD, first_use, record
from common.clock import FakeClock
from common.services.audit_retention import expire_audit_records

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_records_older_than_the_retention_are_deleted_for_every_tenant(ctx):
    clock = FakeClock(START)
    context = bootstrap.build(ctx.settings, clock=clock, blobs=ctx.blobs, metadata=ctx.metadata)
    for day in range(10):
        for tenant in ("alice", "bob"):
            record(context, tenant, "dataset.delete", f"dataset/d/{day}.csv")
        clock.advance(24 * 3600)
    now = clock.now()  # 2026-01-11: the records are 1 to 10 days old
    assert expire_audit_records(ctx.metadata, now, retention_days=0) == {
        "expired_audit_records": 0, "retention_days": 0, "dry_run": False}
    assert expire_audit_records(ctx.metadata, now, retention_days=4, dry_run=True)["expired_audit_records"] == 12
    assert len(list(ctx.metadata.scan(COLLECTION))) == 20
    assert expire_audit_records(ctx.metadata, now, retention_days=4)["expired_audit_records"] == 12
    for tenant in ("alice", "bob"):
        kept = [item.data["resource"] for item in ctx.metadata.list(COLLECTION, tenant, order_by="key")]
        assert kept == [f"dataset/d/{day}.csv" for day in range(6, 10)]
    assert expire_audit_records(ctx.metadata, now, retention_days=4)["expired_audit_records"] == 0


def test_the_cleanup_function_applies_the_retention(ctx, function_apps):
    from werkzeug.test import Client

    clock = FakeClock(START)
    record(bootstrap.build(ctx.settings, clock=clock, blobs=ctx.blobs, metadata=ctx.metadata), "alice",
           "session.delete", "session/s1")
    context = bootstrap.build(ctx.settings.replace(audit_retention_days=30), clock=FakeClock(START.replace(month=3)),
                              blobs=ctx.blobs, metadata=ctx.metadata)
    bootstrap.use(context)
    answer = Client(function_apps["cleanup"]).post("/cleanup").get_json()
    assert answer["audit"] == {"expired_audit_records": 1, "retention_days": 30, "dry_run": False}
    assert not list(ctx.metadata.scan(COLLECTION))


def test_concurrent_first_uses_flag_once_and_record_once(ctx):
    ctx.metadata.put("llm_keys", "alice", "gemini", {"provider": "gemini"})
    stored = ctx.metadata.get("llm_keys", "alice", "gemini")
    barrier = threading.Barrier(4)

    def use() -> None:
        barrier.wait()
        first_use(ctx, "llm_keys", stored, "llm_key.first_use", "llm_key/gemini")

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ctx.metadata.get("llm_keys", "alice", "gemini").data[FIRST_USED_FIELD]
    assert [item.data["action"] for item in ctx.metadata.list(COLLECTION, "alice")] == ["llm_key.first_use"]
