"""Charts: the visualizer's Vega-Lite spec checked and bound to the result (``spec``), its cost bounded
(``policy``), rendered offline in a bounded child process (``render``, ``renderer``, ``worker``), and stored,
listed, signed and served per tenant (``store``).

The serving process never imports vl-convert: only the render worker does.
"""

from __future__ import annotations

from common.charts import render
from common.charts.spec import ChartSpecError, ChartTooExpensive, bind_and_validate, chart_kind
from common.charts.store import ChartContent, ChartRecord, ChartStore
from common.clock import Clock
from common.config import Settings
from common.metadata import MetadataStore
from common.signing import HmacUrlSigner
from common.storage import BlobStore

__all__ = ["ChartContent", "ChartRecord", "ChartSpecError", "ChartStore", "ChartTooExpensive", "bind_and_validate",
           "build_chart_store", "chart_kind"]


def build_chart_store(settings: Settings, blobs: BlobStore, metadata: MetadataStore, clock: Clock) -> ChartStore:
    """Build the chart store from settings (for the composition root): HMAC URLs, or the blob store's own."""
    render.configure(settings)  # the render worker's memory and time limits
    signer = HmacUrlSigner.from_setting(settings.url_signing_secret) if settings.url_signing_secret else None
    # On GCS the browser reads charts straight from the bucket (V4 URLs), once the store can sign them.
    gcs_signer = getattr(blobs, "signed_url", None) if settings.storage_backend == "gcs" else None
    return ChartStore(blobs, metadata, clock, signer, gcs_signer=gcs_signer,
                      default_ttl=settings.chart_url_ttl_seconds)
