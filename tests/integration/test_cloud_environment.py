"""Each function starts with exactly the environment the cloud gives it (common/function_env.yaml) and answers.

Terraform deploys the file's constants as they are and fills the names it lists from its resources; here those
are filled with the emulators' equivalents (a fresh bucket, a fresh collection prefix, generated secrets). Each
function runs in its own interpreter, loaded as functions-framework loads it, with nothing of this process's
environment but the emulators' addresses: a setting the code needs but the file lacks fails here.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import secrets
import subprocess
import sys
import uuid

import pytest
import yaml

from tests.conftest import require_service

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / "common" / "function_env.yaml"

# What each function answers first through its whole stack (auth, settings, backends), and the status it gives.
FIRST_REQUESTS = {
    "health": [("GET", "/api/v1/health", 200), ("GET", "/api/v1/health/ready", 200)],
    "datasets": [("GET", "/api/v1/datasets", 200)],
    "legacy": [("GET", "/datasets?domain=cloud", 200)],
    "queries": [("GET", "/api/v1/queries/q_unknown", 404)],
    "sessions": [("GET", "/api/v1/sessions", 200)],
    "charts": [("GET", "/api/v1/charts", 200)],
    "agents": [("POST", "/tasks/plan", 400)],  # an empty task body is refused, after the context is built
    "postgres": [("GET", "/api/v1/postgres/connections", 200)],
    "llm": [("GET", "/api/v1/llm/keys", 200)],
    "prompts": [("GET", "/api/v1/prompts", 200)],
    "cleanup": [("POST", "/cleanup?dry_run=true", 200)],
}

_PROGRAM = """
import sys
import functions_framework
app = functions_framework.create_app(target={name!r}, source={source!r}, signature_type="http")
client = app.test_client()
for method, path, status in {requests!r}:
    response = client.open(path, method=method, headers={headers!r}, json={{}})
    if response.status_code != status:
        body = response.get_data(as_text=True)[:2000]
        sys.exit(f"{{method}} {{path}}: {{response.status_code}}, expected {{status}}: {{body}}")
"""


def _env_file() -> dict:
    return yaml.safe_load(ENV_FILE.read_text(encoding="utf-8"))


def _emulated_terraform_values(bucket: str, prefix: str) -> dict[str, str]:
    """What Terraform fills, as the emulators stand in for the resources; every name the file lists."""
    return {
        "ENVIRONMENT": "cloud-test",
        "CORS_ORIGINS": "https://app.example.com",
        "ADMIN_USERS": "",
        "GOOGLE_CLOUD_PROJECT": "test-proj",
        "GCS_BUCKET": bucket,
        "METADATA_BACKEND": "firestore",
        "FIRESTORE_DATABASE": "(default)",
        "COLLECTION_PREFIX": prefix,
        "TASKS_QUEUE": "projects/test-proj/locations/us-central1/queues/cloud-test",
        "TASKS_TARGET_URL": "https://agents-cloud-test.example.run.app",
        "TASKS_SERVICE_ACCOUNT": "tasks@test-proj.iam.gserviceaccount.com",
        "TASKS_MAX_ATTEMPTS": "5",
        "CACHE_BACKEND": "memory",
        "MAX_UPLOAD_BYTES": str(200 * 1024 * 1024),
        "DIRECT_UPLOAD_MAX_BYTES": str(1024 * 1024 * 1024),
        "SESSION_RETENTION_DAYS": "0",
        "LOG_LEVEL": "INFO",
        "LLM_DEFAULT_MODEL": "openai/gpt-4o-mini",
        "PUBLIC_BASE_URL": "",
    }


def _generated_secrets() -> dict[str, str]:
    """The secrets' first values, made as modules/secrets makes them (the provider keys are the operator's)."""
    from cryptography.fernet import Fernet

    return {"ENCRYPTION_KEYS": Fernet.generate_key().decode(), "URL_SIGNING_SECRET": secrets.token_urlsafe(48),
            "LLM_DEFAULT_API_KEYS": "openai=sk-not-a-real-key"}


@pytest.fixture(scope="module")
def cloud_env() -> dict[str, dict[str, str]]:
    """Per function: the whole environment its process gets, as in the cloud but on the emulators."""
    from google.cloud import storage

    from tests.doubles import anonymous_signing_credentials

    hosts = {name: require_service(name, name) for name in
             ("STORAGE_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "TASKS_EMULATOR_HOST")}
    listed = _env_file()
    bucket = f"cloud-env-{uuid.uuid4().hex[:12]}"
    storage.Client(project="test-proj", credentials=anonymous_signing_credentials()).create_bucket(bucket)
    filled = _emulated_terraform_values(bucket, f"cloud_{uuid.uuid4().hex[:8]}_")
    assert set(filled) == set(listed["terraform"]), "fill here exactly what Terraform fills"
    generated = _generated_secrets()
    # Only what a Cloud Run instance also has: a PATH, the code on the path, no metadata server, the emulators.
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "NO_GCE_CHECK": "true", **hosts}
    return {function: {**base, **listed["constant"], **filled, **{name: generated[name] for name in names}}
            for function, names in listed["secrets"].items()}


def test_every_function_is_started_here() -> None:
    functions = {main.parent.name for main in (ROOT / "functions").glob("*/main.py")}
    assert set(FIRST_REQUESTS) == functions == set(_env_file()["secrets"])


@pytest.mark.parametrize("function", sorted(FIRST_REQUESTS))
def test_function_starts_and_answers_with_the_cloud_environment(function: str, cloud_env) -> None:
    identity = base64.urlsafe_b64encode(json.dumps({"sub": "cloud-user"}).encode()).decode().rstrip("=")
    from common.auth import GATEWAY_HEADER

    program = _PROGRAM.format(name=function, source=str(ROOT / "functions" / function / "main.py"),
                              requests=FIRST_REQUESTS[function], headers={GATEWAY_HEADER: identity})
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=cloud_env[function],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
