"""Charts: a query's rendered chart, stored under its tenant, listed, handed out as a signed URL, deleted.

A chart is three blobs, ``tenants/<ns>/charts/<chart_id>/{spec.json, chart.html, chart.png}``, and a record in
collection ``charts`` under the session (``parent``). Both renders are made before anything is written, so a
bad spec stores nothing; the blobs are written first and the record last, so a listed chart is always whole;
a save that fails removes its blobs. SVG is rendered from the spec when asked for.

URLs. With a ``gcs_signer`` (GCS: the blob store's ``signed_url``), a V4 signed URL straight to the object; an SVG
is then rendered once and kept as ``chart.svg`` so there is an object to sign. Otherwise (local blobs, or
credentials that cannot sign, like the GCS emulator's, or signing that fails now) a
path to the charts function, ``/api/v1/charts/<id>/content.<fmt>?ns=..&expires=..&signature=..``,
HMAC-signed over the path, the tenant's namespace and the expiry; ``open_signed`` checks it before it reads
anything, so the URL works without credentials (the frontend fetches it, or puts it in an iframe) and one
tenant's URL can never be turned into another's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any, Protocol

from common import errors
from common.auth import Tenant
from common.charts.render import CONTENT_SECURITY_POLICY, render_html, render_png, render_svg
from common.charts.spec import KINDS
from common.clock import Clock
from common.metadata import MetadataStore
from common.signing import HmacUrlSigner
from common.storage import BlobStore, keys

log = logging.getLogger("convoinsight.charts")

COLLECTION = "charts"
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "png": "image/png", "svg": "image/svg+xml"}
# GCS V4 signed URLs cannot outlive 7 days; local URLs keep the same limit so both behave alike.
MAX_URL_TTL_SECONDS = 7 * 24 * 3600
CONTENT_PATH = re.compile(r"/api/v1/charts/(?P<chart_id>[A-Za-z0-9_-]{8,64})/content\.(?P<fmt>html|png|svg)")
_CHART_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_MAX_TEXT = {"title": 500, "query_id": 128, "session_id": 512, "domain": 128}
_IMAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


class ObjectSigner(Protocol):
    def __call__(self, key: str, *, expires_at: dt.datetime, content_type: str) -> str | None:
        """Return a URL that reads the object at ``key`` until ``expires_at``, or None if this store cannot."""


@dataclasses.dataclass(frozen=True)
class ChartRecord:
    chart_id: str
    kind: str
    title: str
    query_id: str
    session_id: str
    domain: str
    row_count: int
    created_at: dt.datetime
    size_bytes: int | None = None  # spec + HTML + PNG; None for charts saved before sizes were kept

    def view(self) -> dict:
        """The chart as the API shows it (no storage keys)."""
        return {**dataclasses.asdict(self), "created_at": self.created_at.isoformat()}


@dataclasses.dataclass(frozen=True)
class ChartContent:
    """What a signed content URL serves: the body, its type, and the headers to send with it."""

    body: bytes
    content_type: str
    headers: dict[str, str]


class ChartStore:
    """Save, read, list, sign and delete a tenant's charts; see the module docstring for the layout."""

    def __init__(self, blobs: BlobStore, metadata: MetadataStore, clock: Clock, signer: HmacUrlSigner | None,
                 *, gcs_signer: ObjectSigner | None = None, default_ttl: int = MAX_URL_TTL_SECONDS):
        self.blobs, self.metadata, self.clock, self.signer = blobs, metadata, clock, signer
        self.gcs_signer = gcs_signer
        self._warned_unsigned = False
        self.default_ttl = _check_ttl(default_ttl)

    def save(self, tenant: Tenant, *, spec: dict, kind: str, query_id: str, session_id: str, domain: str,
             title: str, chart_id: str | None = None) -> ChartRecord:
        """Render and store a bound spec; with a ``chart_id`` that already exists, return that chart."""
        if not isinstance(spec, dict):
            raise errors.BadRequest("the chart spec must be an object")
        _check_fields(kind=kind, title=title, query_id=query_id, session_id=session_id, domain=domain)
        if chart_id is not None:
            _check_id(chart_id)
            try:
                return self.get(tenant, chart_id)  # a repeated delivery of the same pipeline stage
            except errors.NotFound:
                pass
        chart_id = chart_id or self._new_id()
        page = render_html(spec, title=title).encode("utf-8")
        image = render_png(spec)
        data = {"chart_id": chart_id, "kind": kind, "title": title, "query_id": query_id, "session_id": session_id,
                "domain": domain, "row_count": len((spec.get("data") or {}).get("values") or [])}
        prefix = keys.chart_prefix(tenant.namespace, chart_id)
        try:
            data["size_bytes"] = self._write_blobs(prefix, spec, page, image)
            try:
                record = self.metadata.put(COLLECTION, tenant.user_id, chart_id, data, parent=session_id,
                                           expected_revision=None)
            except errors.Conflict:
                # A concurrent delivery saved it first; the blobs just written are the same renders.
                return self.get(tenant, chart_id)
        except BaseException:
            # A record write that reported failure may still have committed: keep the blobs then.
            if not self._exists(tenant, chart_id):
                self._remove_quietly(prefix + "/")
            raise
        return _chart(record)

    def get(self, tenant: Tenant, chart_id: str) -> ChartRecord:
        """Return the tenant's chart, or raise ``NotFound`` (also for another tenant's chart)."""
        return _chart(self._record(tenant, chart_id))

    def list(self, tenant: Tenant, session_id: str | None = None, domain: str | None = None, *,
             limit: int | None = None) -> list[ChartRecord]:
        """Return the tenant's charts, newest first, only a session's or a domain's when asked."""
        records = self.metadata.list(COLLECTION, tenant.user_id, parent=session_id, order_by="-created_at",
                                     limit=None if domain is not None else limit)
        charts = [_chart(record) for record in records if domain is None or record.data.get("domain") == domain]
        return charts[:limit] if limit is not None else charts

    def spec(self, tenant: Tenant, chart_id: str) -> dict:
        """Return the chart's bound Vega-Lite spec."""
        self._record(tenant, chart_id)
        return json.loads(self._blob(f"{keys.chart_prefix(tenant.namespace, chart_id)}/spec.json", chart_id))

    def delete(self, tenant: Tenant, chart_id: str) -> ChartRecord:
        """Remove the chart: its record first (it stops being listed), then its blobs (its URLs stop working)."""
        chart = self.get(tenant, chart_id)
        try:
            self.metadata.delete(COLLECTION, tenant.user_id, chart_id)
        except errors.NotFound:
            pass  # a concurrent delete won; the outcome is the same
        self._remove_quietly(keys.chart_prefix(tenant.namespace, chart_id) + "/")
        return chart

    def url(self, tenant: Tenant, chart_id: str, fmt: str = "html", ttl: int | None = None) -> str:
        """Return a URL that serves the chart as ``fmt`` (html, png or svg) to anyone, for ``ttl`` seconds."""
        if fmt not in CONTENT_TYPES:
            raise errors.BadRequest(f"format must be one of {', '.join(CONTENT_TYPES)}, not {fmt!r}")
        ttl = self.default_ttl if ttl is None else _check_ttl(ttl)
        self._record(tenant, chart_id)
        expires_at = int(self.clock.now().timestamp()) + ttl
        if self.gcs_signer is not None:
            signed = self._object_url(tenant, chart_id, fmt, dt.datetime.fromtimestamp(expires_at, dt.UTC))
            if signed is not None:
                return signed
        if self.signer is None:
            raise errors.ConfigurationError("chart URLs need URL_SIGNING_SECRET (or a blob store that signs URLs)")
        return self.signer.sign(f"/api/v1/charts/{chart_id}/content.{fmt}", expires_at=expires_at,
                                params={"ns": tenant.namespace})

    def _object_url(self, tenant: Tenant, chart_id: str, fmt: str, expiry: dt.datetime) -> str | None:
        """The bucket's own URL to the chart, or None (the charts function's route serves it instead) when the
        bucket's credentials cannot sign now: the same content, so a link never fails for want of a signature."""
        prefix = keys.chart_prefix(tenant.namespace, chart_id)
        try:
            if fmt == "svg":
                self._keep_svg(tenant, chart_id)
            return self.gcs_signer(f"{prefix}/chart.{fmt}", expires_at=expiry, content_type=CONTENT_TYPES[fmt])
        except (errors.ServiceUnavailable, errors.UpstreamError) as exc:
            if self.signer is None:
                raise
            if not self._warned_unsigned:
                self._warned_unsigned = True
                log.warning("chart URLs are served by the charts function: the bucket could not sign (%s)",
                            exc.message)
            return None

    def open_signed(self, path: str, query_args: Mapping[str, str]) -> ChartContent:
        """Serve a signed content URL: check the signature, then read (or, for SVG, render) the chart."""
        match = CONTENT_PATH.fullmatch(path)
        if match is None:
            raise errors.NotFound("no such chart content")
        if self.signer is None:
            raise errors.ConfigurationError("chart URLs need URL_SIGNING_SECRET")
        self.signer.verify(path, query_args, now=self.clock.now().timestamp())
        chart_id, fmt, namespace = match["chart_id"], match["fmt"], query_args.get("ns")
        if not namespace:
            raise errors.NotFound("no such chart content")
        prefix = keys.chart_prefix(namespace, chart_id)
        if fmt == "svg":
            body = render_svg(json.loads(self._blob(f"{prefix}/spec.json", chart_id))).encode("utf-8")
        else:
            body = self._blob(f"{prefix}/chart.{fmt}", chart_id)
        return ChartContent(body, CONTENT_TYPES[fmt], _content_headers(fmt))

    def _write_blobs(self, prefix: str, spec: dict, page: bytes, image: bytes) -> int:
        spec_json = json.dumps(spec, ensure_ascii=False).encode("utf-8")
        self.blobs.put(f"{prefix}/spec.json", spec_json, content_type="application/json")
        self.blobs.put(f"{prefix}/chart.html", page, content_type=CONTENT_TYPES["html"])
        self.blobs.put(f"{prefix}/chart.png", image, content_type=CONTENT_TYPES["png"])
        return len(spec_json) + len(page) + len(image)

    def _record(self, tenant: Tenant, chart_id: str) -> Any:
        try:
            _check_id(chart_id)
            return self.metadata.get(COLLECTION, tenant.user_id, chart_id)
        except errors.NotFound:
            raise errors.NotFound(f"chart {chart_id!r} not found", code="CHART_NOT_FOUND") from None

    def _blob(self, key: str, chart_id: str) -> bytes:
        try:
            return self.blobs.get(key)
        except errors.NotFound:
            raise errors.NotFound(f"chart {chart_id!r} not found", code="CHART_NOT_FOUND") from None

    def _keep_svg(self, tenant: Tenant, chart_id: str) -> None:
        prefix = keys.chart_prefix(tenant.namespace, chart_id)
        if not self.blobs.exists(f"{prefix}/chart.svg"):
            svg = render_svg(json.loads(self._blob(f"{prefix}/spec.json", chart_id)))
            self.blobs.put(f"{prefix}/chart.svg", svg.encode("utf-8"), content_type=CONTENT_TYPES["svg"])

    def _exists(self, tenant: Tenant, chart_id: str) -> bool:
        try:
            self.metadata.get(COLLECTION, tenant.user_id, chart_id)
            return True
        except Exception:  # noqa: BLE001 - unknown means "not ours"; cleanup sweeps what is unreferenced
            return False

    def _remove_quietly(self, prefix: str) -> None:
        try:
            self.blobs.delete_prefix(prefix)
        except Exception:  # noqa: BLE001 - the cleanup job removes what this leaves behind
            log.warning("could not remove blobs under %s; cleanup will", prefix, exc_info=True)

    def _new_id(self) -> str:
        # Time first, so ids sort by creation; random after, so two saves in one millisecond differ.
        return f"{int(self.clock.now().timestamp() * 1000):013d}-{secrets.token_hex(8)}"


def _chart(record: Any) -> ChartRecord:
    data = record.data
    return ChartRecord(chart_id=record.key, kind=data["kind"], title=data["title"], query_id=data["query_id"],
                       session_id=data["session_id"], domain=data["domain"], row_count=data["row_count"],
                       created_at=record.created_at, size_bytes=data.get("size_bytes"))


def _check_id(chart_id: object) -> None:
    if not isinstance(chart_id, str) or not _CHART_ID.fullmatch(chart_id):
        raise errors.NotFound(f"chart {chart_id!r} not found", code="CHART_NOT_FOUND")


def _check_fields(*, kind: str, **texts: Any) -> None:
    if kind not in KINDS:
        raise errors.BadRequest(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    for name, value in texts.items():
        if not isinstance(value, str) or len(value) > _MAX_TEXT[name]:
            raise errors.BadRequest(f"{name} must be a string of at most {_MAX_TEXT[name]} characters")


def _check_ttl(ttl: object) -> int:
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_URL_TTL_SECONDS:
        raise errors.BadRequest(f"ttl must be a whole number of seconds from 1 to {MAX_URL_TTL_SECONDS}")
    return ttl


def _content_headers(fmt: str) -> dict[str, str]:
    policy = CONTENT_SECURITY_POLICY if fmt == "html" else _IMAGE_POLICY
    # Inline, never a download (the frontend may put the URL in an iframe); the content of a URL never changes.
    return {"Content-Disposition": "inline", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": policy, "Cache-Control": "private, max-age=3600"}
