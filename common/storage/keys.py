"""Where everything lives in the blob store: the one module that knows the key layout.

Every key starts with the tenant's namespace, so one tenant's objects can never be addressed through
another's::

    tenants/<ns>/datasets/<domain>/<name>/<version>/original            a dataset version's blobs
                                                  /table-<i>.parquet   (and .preview.parquet, .profile.json,
                                                  /text.txt             or a document's text)
    tenants/<ns>/uploads/<upload_id>/<name>                              a direct upload, staged until committed
    tenants/<ns>/queries/<query_id>/result.json                          a question's result table
    tenants/<ns>/queries/<query_id>/pg/<table>.parquet                   Postgres tables a question read
    tenants/<ns>/charts/<chart_id>/{spec.json, chart.html, chart.png}    a chart and its renders

Names are encoded one segment each (``names.key_segment``), so no name can add a level. Prefixes end
without ``/``; callers that delete "everything under" add it.
"""

from __future__ import annotations

from common import names
from common.auth import Tenant

ROOT = "tenants/"


def domain_prefix(tenant: Tenant, domain: str) -> str:
    """Every dataset of one domain."""
    return f"{ROOT}{tenant.namespace}/datasets/{names.key_segment(domain)}"


def dataset_prefix(tenant: Tenant, domain: str, name: str) -> str:
    """Every version of one dataset."""
    return f"{domain_prefix(tenant, domain)}/{names.key_segment(name)}"


def version_prefix(tenant: Tenant, domain: str, name: str, version: str) -> str:
    """One version of a dataset: written once, never changed."""
    return f"{dataset_prefix(tenant, domain, name)}/{version}"


def staged_upload_key(tenant: Tenant, upload_id: str, name: str) -> str:
    """Where a direct upload's file waits for its commit."""
    return f"{ROOT}{tenant.namespace}/uploads/{upload_id}/{names.key_segment(name)}"


def question_prefix(tenant: Tenant, query_id: str) -> str:
    """Everything one question stored (its result, the Postgres tables it read)."""
    return f"{ROOT}{tenant.namespace}/queries/{query_id}"


def result_key(tenant: Tenant, query_id: str) -> str:
    """A question's result table (JSON rows)."""
    return f"{question_prefix(tenant, query_id)}/result.json"


def question_table_keys(tenant: Tenant, query_id: str, sql_name: str) -> tuple[str, str]:
    """A Postgres table read for one question: its Parquet copy and its profile."""
    prefix = f"{question_prefix(tenant, query_id)}/pg/{sql_name}"
    return f"{prefix}.parquet", f"{prefix}.profile.json"


def chart_prefix(namespace: str, chart_id: str) -> str:
    """A chart's blobs. Takes the namespace itself: a signed chart path carries it, not a caller."""
    return f"{ROOT}{namespace}/charts/{chart_id}"


def chart_key(namespace: str, chart_id: str, filename: str) -> str:
    """One blob of a chart (``spec.json``, ``chart.html``, ``chart.png``, ``chart.svg``)."""
    return f"{chart_prefix(namespace, chart_id)}/{filename}"


def version_of(key: str) -> str | None:
    """The dataset version prefix a blob key belongs to, or None when it is not a dataset blob."""
    parts = key.split("/")
    if len(parts) >= 7 and f"{parts[0]}/" == ROOT and parts[2] == "datasets":
        return "/".join(parts[:6])
    return None


def staged_upload_of(key: str) -> str | None:
    """The staged-upload prefix a blob key belongs to, or None when it is not a staged upload."""
    parts = key.split("/")
    if len(parts) >= 5 and f"{parts[0]}/" == ROOT and parts[2] == "uploads":
        return "/".join(parts[:4])
    return None
