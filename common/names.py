"""Domain and dataset names: the user's spelling is kept, but nothing unsafe gets through.

A domain is normalised the way the original API did it (whitespace collapsed to ``-``, lower-cased) so the
same domain reached by path, query, form or JSON is one domain. A dataset name is the uploaded file name,
kept exactly (the frontend uses it as the dataset id). Both refuse path tricks: ``..``, ``/``, ``\\``, NUL
and control characters can never reach a storage key, and neither can more than 128 characters.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import NewType

from common.errors import BadRequest

MAX_NAME_LENGTH = 128

# A domain name already normalised at the edge (``domain_name``): services take it as it is, never again.
Domain = NewType("Domain", str)


def _check(value: str, what: str) -> str:
    if not value:
        raise BadRequest(f"the {what} is empty", code="INVALID_NAME")
    if len(value) > MAX_NAME_LENGTH:
        raise BadRequest(f"the {what} is longer than {MAX_NAME_LENGTH} characters", code="INVALID_NAME")
    if ".." in value or "/" in value or "\\" in value:
        raise BadRequest(f"the {what} {value!r} may not contain '..', '/' or '\\'", code="INVALID_NAME")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise BadRequest(f"the {what} may not contain control characters", code="INVALID_NAME")
    return value


def domain_name(raw: object) -> Domain:
    """Normalise and check a domain name (``"My  Sales"`` -> ``"my-sales"``)."""
    if not isinstance(raw, str):
        raise BadRequest("the domain must be a string", code="INVALID_NAME")
    return Domain(_check("-".join(raw.split()).lower(), "domain"))


def form_domain_name(raw: object) -> Domain:
    """Like ``domain_name`` for a multipart field, which the frontend may send percent-encoded."""
    if isinstance(raw, str) and "%" in raw:
        raw = urllib.parse.unquote(raw)
    return domain_name(raw)


def dataset_name(raw: object) -> str:
    """Check a dataset (file) name, keeping it exactly as given."""
    if not isinstance(raw, str):
        raise BadRequest("the file name must be a string", code="INVALID_NAME")
    return _check(raw, "file name")


def key_segment(name: str) -> str:
    """Encode a checked name as one storage-key segment: readable when short, hashed when long."""
    quoted = urllib.parse.quote(name, safe="")
    if len(quoted) <= 120 and not quoted.startswith("."):
        return quoted
    # "%h" can never come out of quote() ("%" is always followed by two hex digits), so no clash.
    return "%h" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]
