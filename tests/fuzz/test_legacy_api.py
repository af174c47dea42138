"""The original API's routes fuzzed with mutated requests (hypothesis), seeded.

Each route starts from a plausible request, then its fields are dropped, added or replaced by values a
client should never send (objects where text goes, 80-bit integers, lone surrogates, NUL, control
characters in paths, deep nesting, bytes that are not JSON, the wrong content type). Every answer must be
no 5xx but an honest 502/503 (or the synchronous /query's 504), and every error in that route's own shape.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz.checks import answer_problems, flagged, legacy_detail, v1_error
from tests.fuzz.conftest import PROFILE, SEED, USER

TRICKY_TEXT = ["", " ", "\ud800", "x\udfffy", "\x00", "a\nb", "\x7f", "../../etc/passwd", "a/b", "%00", "%2F",
               "<img src=x onerror=alert(1)>", "Ünïcødé", "\U0001F600", "x" * 5000, "null", "[]", "{}", "1e400"]
TRICKY_NUMBERS = [0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**80, 1e308, -0.0, 3.5]


def _query_shape(body: Any) -> list[str]:
    # The synchronous /query answers 504 {detail, code: TIMEOUT, query_id} when the answer takes too long.
    if isinstance(body, dict) and body.get("code") == "TIMEOUT":
        return legacy_detail({key: value for key, value in body.items() if key != "query_id"})
    return legacy_detail(body)


# (method, path with {placeholders}, error shape, JSON body template or None, query template)
ROUTES: list[tuple[str, str, Any, dict | None, dict]] = [
    ("POST", "/query", _query_shape, {"domain": "sales", "prompt": "total revenue?", "userId": USER,
                                      "session_id": "s1", "model": "openai/gpt-4o-mini"}, {}),
    ("POST", "/query/cancel", legacy_detail, {"query_id": "q1", "session_id": "s1", "userId": USER}, {}),
    ("POST", "/suggest", legacy_detail, {"domain": "sales", "userId": USER, "model": "openai/gpt-4o-mini"}, {}),
    ("GET", "/sessions", legacy_detail, None, {"userId": USER, "limit": "5"}),
    ("GET", "/sessions/{session}/history", legacy_detail, None, {"userId": USER}),
    ("GET", "/sessions/{session}/export/pdf", legacy_detail, None, {"userId": USER}),
    ("GET", "/charts/{namespace}/{filename}", legacy_detail, None, {"sig": "x", "exp": "1"}),
    ("DELETE", "/charts/sb/{filename}", legacy_detail, None, {}),
    ("POST", "/validate-key", flagged("valid"), {"provider": "openai", "apiKey": "sk-fuzz-0123456789",
                                                 "userId": USER}, {}),
    ("PUT", "/update-provider-key", flagged("updated"), {"provider": "openai", "apiKey": "sk-fuzz-0123456789",
                                                         "userId": USER}, {}),
    ("DELETE", "/delete-provider-key", flagged(None), {"provider": "openai", "userId": USER}, {}),
    ("GET", "/get-provider-keys", flagged(None), None, {"userId": USER}),
    ("POST", "/set-active-config", flagged("saved"), {"provider": "openai", "model": "gpt-4o-mini",
                                                      "userId": USER}, {}),
    ("GET", "/litellm/models", flagged(None), None, {"provider": "openai"}),
    ("GET", "/llm/registry", flagged(None), None, {}),
    ("POST", "/pg/save", flagged("saved"), {"userId": USER, "name": "fuzz", "host": "127.0.0.1", "port": 5432,
                                            "dbname": "fuzz", "user": "fuzz", "password": "fuzz"}, {}),
    ("GET", "/pg/get", flagged(None), None, {"userId": USER}),
    ("POST", "/pg/test", flagged("ok"), {"userId": USER, "host": "127.0.0.1", "port": 1, "dbname": "fuzz",
                                         "user": "fuzz"}, {}),
    ("GET", "/datasets", legacy_detail, None, {"domain": "sales", "userId": USER}),
    ("GET", "/datasets/{domain}/all", legacy_detail, None, {"userId": USER}),
    ("DELETE", "/datasets/{domain}/all", legacy_detail, None, {"userId": USER}),
    ("GET", "/datasets/{domain}/{filename}", legacy_detail, None, {"as": "json", "n": "5"}),
    ("DELETE", "/datasets/{domain}/{filename}", legacy_detail, None, {}),
    ("PUT", "/datasets/{domain}/{filename}/metadata", legacy_detail,
     {"description": "d", "columns": [{"name": "a", "description": "b"}], "userId": USER}, {}),
    ("GET", "/files/datasets/{user}/{domain}/{filename}", legacy_detail, None, {"expires": "1", "signature": "x"}),
    ("POST", "/upload_datasets/{domain}", legacy_detail, None, {"filename": "a.csv"}),
    ("POST", "/datasets/upload", legacy_detail, None, {}),
    ("GET", "/domains", legacy_detail, None, {"userId": USER}),
    ("GET", "/domains/{domain}/datasets", legacy_detail, None, {}),
    ("GET", "/health", v1_error, None, {}),
]

texts = st.one_of(st.sampled_from(TRICKY_TEXT), st.text(max_size=40))
scalars = st.one_of(texts, st.sampled_from(TRICKY_NUMBERS), st.integers(), st.floats(allow_nan=False),
                    st.booleans(), st.none())
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(texts, inner, max_size=4)),
                           max_leaves=12)


@st.composite
def mutated_body(draw, template: dict | None) -> tuple[bytes | None, str | None]:
    """A body (bytes) and its Content-Type: the template with fields dropped, replaced or added, or junk."""
    kind = draw(st.sampled_from(["fields", "fields", "fields", "value", "deep", "junk", "none"]))
    if kind == "none":
        return None, None
    if kind == "junk":
        junk = draw(st.one_of(st.binary(max_size=200), st.sampled_from(
            [b"{", b"[1]", b"null", b'{"a": NaN}', b"\xff\xfe{}", b'{"a": "\xed\xa0\x80"}'])))
        return junk, draw(st.sampled_from(["application/json", "text/plain", "multipart/form-data"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=60, max_value=3000))
        return (f'{{"userId": "{USER}", "x": ' + "[" * depth + "]" * depth + "}").encode(), "application/json"
    if kind == "value":
        document: Any = draw(json_values)
    else:
        document = dict(template or {})
        for key in list(document):
            action = draw(st.sampled_from(["keep", "keep", "drop", "replace"]))
            if action == "drop":
                del document[key]
            elif action == "replace":
                document[key] = draw(json_values)
        document.update(draw(st.dictionaries(texts, json_values, max_size=2)))
    # ensure_ascii: a lone surrogate travels as the "\ud800" escape, which is valid JSON.
    return json.dumps(document, ensure_ascii=True).encode(), draw(st.sampled_from(
        ["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"]))


def _segment(value: str) -> str:
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


@pytest.fixture(scope="module")
def session():
    http = requests.Session()
    http.trust_env = False  # never a proxy from the environment: loopback only
    yield http
    http.close()


@pytest.mark.parametrize(("method", "template_path", "shape", "body", "query"), ROUTES,
                         ids=[f"{method} {path}" for method, path, *_ in ROUTES])
@seed(SEED)
@settings(max_examples=PROFILE["legacy_examples"], database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_requests_get_no_server_error_and_the_routes_error_shape(emulator, session, method, template_path,
                                                                         shape, body, query, data):
    path = template_path.format(**{name: _segment(data.draw(st.one_of(st.just("sales"), texts), label=name))
                                   for name in ("session", "namespace", "filename", "domain", "user")})
    args = {key: data.draw(st.one_of(st.just(value), texts), label=key) for key, value in query.items()}
    args.update(data.draw(st.dictionaries(texts, texts, max_size=2), label="extra args"))
    raw, content_type = data.draw(mutated_body(body), label="body") if body is not None or method != "GET" \
        else (None, None)
    headers = {"X-User-Id": USER, **({"Content-Type": content_type} if content_type else {})}
    query_string = urllib.parse.urlencode({key.encode("utf-8", "surrogatepass"): value.encode("utf-8", "surrogatepass")
                                           for key, value in args.items()})
    response = session.request(method, f"{emulator}{path}?{query_string}", data=raw, headers=headers, timeout=30)
    extra = frozenset({504}) if template_path == "/query" else frozenset()
    problems = answer_problems(method, path, response.status_code, response.headers.get("Content-Type", ""),
                               response.content, shape, extra_statuses=extra)
    assert not problems, "\n".join(problems) + f"\nquery: {query_string}\nbody ({content_type}): {raw!r}"[:2000]
