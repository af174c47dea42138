"""Re-encrypt every stored secret under the first ENCRYPTION_KEYS key, so an older key can be retired.

Rotation: put a new key in front (``ENCRYPTION_KEYS=new,old``), deploy, run ``reencrypt`` (the cleanup
function does on each run; ``make rotate-keys`` does on demand), and drop the old key once the report says
nothing remains under it. ``SECRET_FIELDS`` names every place a ciphertext is kept: a new kind of secret is
one more line there.

Each record is rewritten with compare-and-set, the check made again on the copy being written, so a user's
concurrent save is never overwritten (theirs is already under the first key). Given ``audit_to``, each rewrite
is in its owner's audit trail (``secrets.reencrypt``, by ``system``): its intent first, so a rewrite that
cannot be recorded is not made. A ciphertext no configured key
opens is counted and named, never changed or deleted. A second pass rewrites nothing. Neither a secret nor
its ciphertext is ever logged or returned: only counts and the (collection, tenant id, key) of a failure.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from common import audit, errors
from common.crypto import Encryptor
from common.metadata import MetadataStore, update_record
from common.ports import SecretPorts

if TYPE_CHECKING:
    from common.audit.trail import AuditPorts

log = logging.getLogger("convoinsight.key_rotation")


@dataclasses.dataclass(frozen=True)
class SecretField:
    """Where a ciphertext lives: a record of ``collection``, at ``path`` in its data (None when it has none)."""

    collection: str
    path: tuple[str, ...]

    def value_in(self, data: dict[str, Any]) -> Any:
        """Return what ``data`` holds at ``path`` (None when a step is missing)."""
        value: Any = data
        for name in self.path:
            if not isinstance(value, dict):
                return None
            value = value.get(name)
        return value

    def with_value(self, data: dict[str, Any], value: str) -> dict[str, Any]:
        """Return ``data`` with ``value`` at ``path``, where ``value_in`` found one."""
        parent = data
        for name in self.path[:-1]:
            parent = parent[name]
        parent[self.path[-1]] = value
        return data


# Collections named, not imported from their services, so the cleanup function does not deploy the model
# client's and Postgres client's dependencies to learn three names; a unit test holds them equal.
SECRET_FIELDS = (
    SecretField("llm_keys", ("ciphertext",)),  # a saved provider key (services.llm_config.stored_keys)
    SecretField("pg_connections", ("password_enc",)),  # a saved connection's password (services.postgres)
    SecretField("queries", ("secrets", "api_key")),  # a running question's own key (services.query_jobs)
)
COUNTS = ("rewritten", "current", "remaining_under_old_keys", "undecryptable")
MAX_PROBLEMS_LISTED = 100  # the rest are counted: the answer of a scheduled job stays small


def reencrypt(metadata: MetadataStore, encryptor: Encryptor, *, dry_run: bool = False,
              audit_to: AuditPorts | None = None) -> dict[str, Any]:
    """Rewrite every secret not under the first key with that key; report the counts per collection.

    Counts are of ciphertexts: ``rewritten`` now under the first key, ``current`` already under it,
    ``remaining_under_old_keys`` still under an older one (all of them on a dry run; otherwise those whose
    record kept changing), ``undecryptable`` opened by no configured key. ``problems`` names the records of
    the last two.
    """
    report = _Report(dry_run)
    for field in SECRET_FIELDS:
        for record in metadata.scan(field.collection):
            ciphertext = field.value_in(record.data)
            if ciphertext is None:
                continue
            if _is_current(encryptor, ciphertext):
                report.count(field.collection, "current")
            elif dry_run:
                outcome = "remaining_under_old_keys" if _opens(encryptor, ciphertext) else "undecryptable"
                report.count(field.collection, outcome, record.tenant_id, record.key)
            else:
                outcome = _audited_rewrite(audit_to, metadata, encryptor, field, record.tenant_id, record.key)
                if outcome is not None:
                    report.count(field.collection, outcome, record.tenant_id, record.key)
    return report.finish()


def reencrypt_if_configured(deps: SecretPorts, *, dry_run: bool = False) -> dict[str, Any]:
    """The cleanup function's step: ``reencrypt`` when ENCRYPTION_KEYS is set, else say why it was skipped."""
    if not deps.settings.encryption_keys:
        # An instance not given the keys cannot re-encrypt; the other cleanup steps must still run, and the
        # answer says why this one did not.
        return {"skipped": "ENCRYPTION_KEYS is not set", "dry_run": dry_run}
    return reencrypt(deps.metadata, deps.encryptor, dry_run=dry_run, audit_to=deps)


def _audited_rewrite(audit_to: AuditPorts | None, metadata: MetadataStore, encryptor: Encryptor,
                     field: SecretField, tenant_id: str, key: str) -> str | None:
    if audit_to is None:
        return _rewrite(metadata, encryptor, field, tenant_id, key)
    try:
        with audit.audited(audit_to, tenant_id, "secrets.reencrypt", f"{field.collection}/{key}", actor="system",
                           details={"collection": field.collection}) as recorded:
            outcome = _rewrite(metadata, encryptor, field, tenant_id, key)
            recorded.details["result"] = outcome or "gone"
    except errors.ServiceUnavailable:
        return "remaining_under_old_keys"  # not recorded, so not rewritten: the next pass tries again
    return outcome


def _rewrite(metadata: MetadataStore, encryptor: Encryptor, field: SecretField, tenant_id: str,
             key: str) -> str | None:
    """Re-encrypt one record's secret with compare-and-set; return its outcome (None: it is gone)."""
    outcome: list[str] = []

    def change(data: dict[str, Any]) -> dict[str, Any] | None:
        outcome.clear()  # this may run again after a conflict: only the last try counts
        ciphertext = field.value_in(data)
        if ciphertext is None:
            return None  # the secret was removed meanwhile (a question ended, a key was deleted)
        if _is_current(encryptor, ciphertext):
            outcome.append("current")  # saved again meanwhile, under the first key
            return None
        try:
            rotated = encryptor.rotate(ciphertext) if isinstance(ciphertext, str) else None
        except errors.ConfigurationError:
            rotated = None
        if rotated is None:
            outcome.append("undecryptable")
            return None
        outcome.append("rewritten")
        return field.with_value(data, rotated)

    try:
        update_record(metadata, field.collection, tenant_id, key, change)
    except errors.NotFound:
        return None  # deleted meanwhile
    except errors.Conflict:
        return "remaining_under_old_keys"  # kept changing: the next pass tries again
    return outcome[0] if outcome else None


def _is_current(encryptor: Encryptor, ciphertext: Any) -> bool:
    return isinstance(ciphertext, str) and encryptor.is_current(ciphertext)


def _opens(encryptor: Encryptor, ciphertext: Any) -> bool:
    if not isinstance(ciphertext, str):
        return False
    try:
        encryptor.decrypt(ciphertext)
    except errors.ConfigurationError:
        return False
    return True


class _Report:
    """Counts per collection, and the records that are not yet under the first key."""

    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.collections = {field.collection: dict.fromkeys(COUNTS, 0) for field in SECRET_FIELDS}
        self.problems: list[dict[str, str]] = []
        self.problems_left_off = 0

    def count(self, collection: str, outcome: str, tenant_id: str = "", key: str = "") -> None:
        self.collections[collection][outcome] += 1
        if outcome in ("remaining_under_old_keys", "undecryptable"):
            if len(self.problems) < MAX_PROBLEMS_LISTED:
                self.problems.append({"collection": collection, "tenant_id": tenant_id, "key": key,
                                      "problem": outcome})
            else:
                self.problems_left_off += 1

    def finish(self) -> dict[str, Any]:
        totals = {name: sum(counts[name] for counts in self.collections.values()) for name in COUNTS}
        if totals["rewritten"] or totals["remaining_under_old_keys"] or totals["undecryptable"]:
            log.warning("secrets %s: %s", "checked (dry run)" if self.dry_run else "re-encrypted",
                        ", ".join(f"{name} {totals[name]}" for name in COUNTS))
        return {"dry_run": self.dry_run, "totals": totals, "collections": self.collections,
                "problems": self.problems, "problems_left_off": self.problems_left_off}
