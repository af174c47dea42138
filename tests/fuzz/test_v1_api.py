"""The v1 API fuzzed from its OpenAPI document (common/openapi.yaml) with schemathesis, seeded.

Each operation gets valid and invalid requests generated from the document. Every answer must be documented
(status, content type, and for 2xx the schema), never a 5xx but an honest 502/503, and every error the one
v1 error body. A failure prints the request as a curl command to replay against ``make run``.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.openapi import OPENAPI_FILE
from tests.fuzz.checks import answer_problems, v1_error
from tests.fuzz.conftest import PROFILE, SEED, USER

CONFIG = SchemathesisConfig.from_dict({"seed": SEED, "generation": {
    "max-examples": PROFILE["v1_examples"], "mode": "all", "database": "none"}})
schema = schemathesis.openapi.from_path(OPENAPI_FILE, config=CONFIG)
DOCUMENTED = [status_code_conformance, content_type_conformance, response_schema_conformance]


def header(headers: dict, name: str) -> str:
    values = next((value for key, value in headers.items() if key.lower() == name.lower()), "")
    return values[0] if isinstance(values, list) and values else values or ""


@schema.parametrize()
@seed(SEED)
@settings(max_examples=PROFILE["v1_examples"], database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_no_error_is_a_server_bug(case, emulator):
    if os.environ.get("FUZZ_TRACE"):  # one line per request, to compare two runs
        body = case.body if isinstance(case.body, dict | list | str) else type(case.body).__name__
        with open(os.environ["FUZZ_TRACE"], "a") as trace:
            trace.write(f"{case.method} {case.formatted_path} {case.query} {body}\n")
    response = case.call(base_url=emulator, headers={"X-User-Id": USER}, timeout=30)
    problems = answer_problems(case.method, case.formatted_path, response.status_code,
                               header(response.headers, "Content-Type"), response.content, v1_error)
    assert not problems, "\n".join(problems) + "\n" + case.as_curl_command(base_url=emulator)
    case.validate_response(response, checks=DOCUMENTED)
