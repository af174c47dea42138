"""What an audit record is: who did what to which resource, when, with what outcome, from where.

The vocabulary of actions is fixed (``ACTIONS``): a listing filters on it and a log sink may select on it, so a
new sensitive operation adds its action here. A record never carries a secret or a cell of data: ``details``
keeps only allowlisted keys with short scalar values (``safe_details``), and the rest of the record is ids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

ACTIONS = frozenset({
    "llm_key.save", "llm_key.test", "llm_key.first_use", "llm_key.delete",
    "postgres_connection.save", "postgres_connection.test", "postgres_connection.first_use",
    "postgres_connection.delete",
    "prompt.override", "prompt.revert", "config.set",
    "dataset.delete", "domain.delete", "session.delete",
    "secrets.reencrypt", "audit.read",
    "auth.refused", "authz.refused", "rate_limit.refused",
})
# Refusals go to the audit log stream only: one per refused request must not become one store write each.
REFUSALS = frozenset({"auth.refused", "authz.refused", "rate_limit.refused"})
OUTCOMES = ("attempted", "success", "failure", "refused")

# The only detail keys a record may carry: names and counts, never values a caller sent as a secret or data.
DETAIL_KEYS = frozenset({
    "provider", "name", "domain", "filename", "session_id", "layer", "prompt", "version", "verified_with",
    "created", "deleted_count", "fields", "code", "method", "path", "rule_class", "retry_after", "intent",
    "keys_reencrypted", "collection", "result",
})
MAX_DETAIL_CHARS = 200
MAX_DETAIL_ITEMS = 50


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    """One audited operation. ``actor`` differs from ``tenant_id`` only when an administrator acts for a tenant."""

    tenant_id: str
    actor: str
    action: str
    resource: str
    outcome: str
    status: int
    request_id: str
    client: str
    at: dt.datetime
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    event_id: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r}")

    def to_data(self) -> dict[str, Any]:
        """The record's stored (and logged) fields: JSON values only."""
        return {"event_id": self.event_id, "tenant_id": self.tenant_id, "actor": self.actor, "action": self.action,
                "resource": self.resource, "outcome": self.outcome, "status": self.status,
                "request_id": self.request_id, "client": self.client, "at": iso(self.at), "details": self.details}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AuditEvent:
        """Read a stored record back."""
        return cls(tenant_id=data["tenant_id"], actor=data["actor"], action=data["action"],
                   resource=data["resource"], outcome=data["outcome"], status=data["status"],
                   request_id=data["request_id"], client=data["client"], at=parse_iso(data["at"]),
                   details=dict(data.get("details") or {}), event_id=data.get("event_id", ""))


def safe_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keep only allowlisted keys whose values are short scalars (or short lists of them); drop the rest."""
    kept: dict[str, Any] = {}
    for key, value in (details or {}).items():
        if key not in DETAIL_KEYS:
            continue
        if isinstance(value, (list, tuple)):
            items = [_scalar(item) for item in list(value)[:MAX_DETAIL_ITEMS]]
            kept[key] = [item for item in items if item is not None]
        elif (scalar := _scalar(value)) is not None or value is None:
            kept[key] = scalar
    return kept


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        return value[:MAX_DETAIL_CHARS]
    return None


def iso(moment: dt.datetime) -> str:
    """A UTC instant as fixed-width ISO text, so text order is time order (the store's keys rely on it)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> dt.datetime:
    """Read ``iso``'s text (or any ISO 8601 instant; a naive one is taken as UTC)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
