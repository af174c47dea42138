"""The audit trail of sensitive operations: appended to the metadata store and logged to its own log stream.

``events`` says what a record is (the fixed vocabulary, the details allowlist); ``trail`` appends them (and
when: before or after the change); ``listing`` reads a tenant's trail back, newest first, by pages.
"""

from common.audit.events import ACTIONS, REFUSALS, AuditEvent
from common.audit.trail import COLLECTION, FIRST_USED_FIELD, audited, first_use, log_refusal, record, request_origin

__all__ = ["ACTIONS", "COLLECTION", "FIRST_USED_FIELD", "REFUSALS", "AuditEvent", "audited", "first_use",
           "log_refusal", "record", "request_origin"]
