"""Admin overrides of the shipped prompts: stored once for every tenant, read through a per-instance TTL cache.

Storage. Collection ``prompt_overrides``, tenant key ``_global`` (an override changes the prompt for everyone,
so it belongs to no tenant; only this module names the collection, so no user-scoped call can reach it), one
record per prompt, keyed by its name: ``{"version": n, "active": bool, "history": [...]}``. ``history`` keeps
the last ``HISTORY_LENGTH`` saved versions (the checked template, who saved it, when); the active override is
the newest of them. A revert clears ``active`` and keeps the rest.

Versions only grow. The first override of a file at version n is n + 1; each later save adds one, written with
compare-and-set on the record, so two admins saving at once never get the same number; a revert keeps the
counter. A version number therefore always names one text, which the answer cache and provenance rely on.

Each instance caches what it read for ``ttl_seconds`` (``PROMPT_CACHE_TTL_SECONDS``): a save takes effect on
every instance within that time, with no redeploy, and at once on the instance that saved it.

An override is checked like a file (``template_from_mapping``) and against the shipped template: it may use
only inputs the shipped one declares (callers supply nothing else), and it must keep the shipped output block,
because code parses each reply by it. A stored override that no longer passes (a later deploy changed the
shipped template) is ignored with a warning and the file serves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from common import errors
from common.clock import Clock
from common.metadata import MetadataStore, Record
from common.prompts.loader import PromptCatalog
from common.prompts.templates import PromptError, PromptTemplate, template_from_mapping

log = logging.getLogger("convoinsight.prompts")

COLLECTION = "prompt_overrides"
GLOBAL_TENANT = "_global"
HISTORY_LENGTH = 10
# Four times the largest shipped prompt; with HISTORY_LENGTH versions a record stays far below Firestore's 1 MiB.
MAX_OVERRIDE_BYTES = 32 * 1024
FILE, OVERRIDE = "file", "override"
_WRITE_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class EffectivePrompt:
    """The template that serves a prompt now, whether it is the ``file`` or an ``override``, and the file's version."""

    template: PromptTemplate
    source: str
    file_version: int


class OverridingCatalog:
    """A ``PromptCatalog``: each prompt's stored override when it has an active one, else the shipped file."""

    def __init__(self, files: PromptCatalog, metadata: MetadataStore, *, clock: Clock, ttl_seconds: int):
        if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 0:
            raise ValueError(f"ttl_seconds must be a whole number of seconds, at least 0, got {ttl_seconds!r}")
        self.files, self.metadata, self.clock, self.ttl_seconds = files, metadata, clock, ttl_seconds
        self._cached: dict[str, tuple[dt.datetime, PromptTemplate | None]] = {}

    def get(self, name: str) -> PromptTemplate:
        """Return the template that serves ``name`` now, or raise ``NotFound``."""
        return self.effective(name).template

    def names(self) -> list[str]:
        """Return the name of every prompt, sorted (overrides only replace shipped prompts)."""
        return self.files.names()

    def effective(self, name: str) -> EffectivePrompt:
        """Return the template that serves ``name`` now and where it came from."""
        shipped = self.files.get(name)
        override = self._cached_override(name, shipped)
        if override is None:
            return EffectivePrompt(shipped, FILE, shipped.version)
        return EffectivePrompt(override, OVERRIDE, shipped.version)

    def history(self, name: str) -> list[dict[str, Any]]:
        """Return the kept versions of ``name``'s override (version, saved_by, saved_at), oldest first."""
        self.files.get(name)
        record = self._record(name)
        entries = record.data["history"] if record is not None else []
        return [{key: entry[key] for key in ("version", "saved_by", "saved_at")} for entry in entries]

    def save(self, name: str, raw: object, *, author: str) -> PromptTemplate:
        """Check ``raw`` (a prompt file's fields) against the shipped template and store it as the next version."""
        shipped = self.files.get(name)
        fields = _override_fields(name, raw)
        checked = _checked(name, fields, shipped, version=shipped.version + 1)  # every check before any write

        def next_version(data: dict[str, Any] | None) -> dict[str, Any]:
            previous = data or {"version": shipped.version, "history": []}
            version = max(previous["version"], shipped.version) + 1
            entry = {"version": version, "template": {**checked.to_dict(), "version": version},
                     "saved_by": author, "saved_at": self.clock.now().isoformat()}
            return {"version": version, "active": True,
                    "history": [*previous["history"], entry][-HISTORY_LENGTH:]}

        version = self._update(name, next_version)["version"]
        return dataclasses.replace(checked, version=version, source_path=_source(name, version))

    def revert(self, name: str) -> PromptTemplate:
        """Stop overriding ``name`` (the file serves again); ``NotFound`` when it has no active override."""
        shipped = self.files.get(name)

        def deactivate(data: dict[str, Any] | None) -> dict[str, Any]:
            if not data or not data.get("active"):
                raise errors.NotFound(f"prompt {name!r} has no override", code="NO_OVERRIDE")
            return {**data, "active": False}

        self._update(name, deactivate)
        return shipped

    def _update(self, name: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        for _ in range(_WRITE_ATTEMPTS):
            record = self._record(name)
            data = change(record.data if record is not None else None)
            try:
                self.metadata.put(COLLECTION, GLOBAL_TENANT, name, data,
                                  expected_revision=record.revision if record is not None else None)
            except errors.Conflict:
                continue  # another save won the race: build on what it stored
            self._cached.pop(name, None)  # this instance sees its own write at once
            return data
        raise errors.Conflict(f"prompt {name!r} is being changed by someone else; try again")

    def _cached_override(self, name: str, shipped: PromptTemplate) -> PromptTemplate | None:
        now = self.clock.now()
        cached = self._cached.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        override = self._stored_override(name, shipped)
        if self.ttl_seconds:
            self._cached[name] = (now + dt.timedelta(seconds=self.ttl_seconds), override)
        return override

    def _stored_override(self, name: str, shipped: PromptTemplate) -> PromptTemplate | None:
        record = self._record(name)
        if record is None or not record.data.get("active"):
            return None
        latest = record.data["history"][-1]
        try:
            return _checked(name, latest["template"], shipped, version=latest["version"])
        except errors.BadRequest as exc:
            log.warning("ignoring the stored override of prompt %r: %s", name, exc.message)
            return None

    def _record(self, name: str) -> Record | None:
        try:
            return self.metadata.get(COLLECTION, GLOBAL_TENANT, name)
        except errors.NotFound:
            return None


def _override_fields(name: str, raw: object) -> dict[str, Any]:
    """Return the body's template fields; ``name`` may be given but must match, ``version`` is assigned."""
    if not isinstance(raw, Mapping):
        raise errors.BadRequest("the prompt must be an object with the fields of a prompt file")
    if len(json.dumps(raw, ensure_ascii=False, default=str).encode("utf-8")) > MAX_OVERRIDE_BYTES:
        raise errors.PayloadTooLarge(f"a prompt may be at most {MAX_OVERRIDE_BYTES} bytes")
    if raw.get("name", name) != name:
        raise errors.BadRequest(f"the body names prompt {raw['name']!r}, the path {name!r}")
    return {key: value for key, value in raw.items() if key not in ("name", "version")}


def _checked(name: str, fields: Mapping[str, Any], shipped: PromptTemplate, *, version: int) -> PromptTemplate:
    """Check an override as a prompt file and against the shipped template; ``BadRequest`` names the fault."""
    source = _source(name, version)
    try:
        template = template_from_mapping({**fields, "name": name, "version": version}, source, expected_name=name)
    except PromptError as exc:
        raise errors.BadRequest(exc.message, code="PROMPT_INVALID", details={"prompt": name}) from None
    unknown = sorted(set(template.inputs) - set(shipped.inputs))
    if unknown:
        raise errors.BadRequest(
            f"{source}: unknown input(s) {', '.join(unknown)}; callers supply only {', '.join(shipped.inputs)}",
            code="PROMPT_INVALID", details={"prompt": name, "unknown_inputs": unknown,
                                            "allowed_inputs": list(shipped.inputs)})
    if template.output != shipped.output:
        raise errors.BadRequest(
            f"{source}: the output must stay as shipped (format {shipped.output.format!r} and its schema): "
            "the code parses every reply by it",
            code="PROMPT_INVALID", details={"prompt": name, "output": shipped.to_dict()["output"]})
    return template


def _source(name: str, version: int) -> str:
    return f"{COLLECTION}/{name}@v{version}"
