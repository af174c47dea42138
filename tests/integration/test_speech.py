"""Voice questions: the original's POST /speech-to-text and its successor POST /api/v1/llm/transcriptions.

The real LiteLLM transcription path runs against a scripted Whisper-protocol server on loopback, with the
default STT_MODEL (groq/whisper-large-v3) pointed at it by LLM_API_BASE.
"""

from __future__ import annotations

import io

import pytest

from tests.integration.pipeline_fixtures import SERVER_KEY

WEBM = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8  # an EBML header, then what MediaRecorder would write
SERVER_GROQ_KEY = "gsk-server-key-for-tests-0123456789"
TENANT_GROQ_KEY = "gsk-tenant-key-for-tests-0123456789"


@pytest.fixture
def extra_settings(whisper):
    whisper.requests.clear()
    return {"llm_api_base": whisper.url, "llm_default_api_keys": f"scripted={SERVER_KEY},groq={SERVER_GROQ_KEY}",
            "stt_max_bytes": 64 * 1024, "rate_limits": "query=5/minute"}


def _record(pipeline, path="/speech-to-text", user="alice", clip=WEBM, filename="voice.webm", **fields):
    data = {"file": (io.BytesIO(clip), filename, "audio/webm"), **fields}
    return pipeline.call("POST", path, user=user, content_type="multipart/form-data", data=data)


def test_the_frontends_voice_clip_comes_back_as_its_transcript(pipeline, whisper):
    response = _record(pipeline, userId="alice", language="id")
    assert response.status_code == 200, response.get_json()
    assert response.headers["Deprecation"] == "true"
    assert response.get_json() == {"transcript": "berapa total revenue per region", "language": "id",
                                   "provider": "groq", "model": "groq/whisper-large-v3"}
    [received] = whisper.requests
    assert received.path == "/v1/audio/transcriptions" and received.file == WEBM
    assert received.fields["model"] == "whisper-large-v3" and received.fields["language"] == "id"
    assert received.authorization == f"Bearer {SERVER_GROQ_KEY}" and received.filename == "voice.webm"


def test_the_v1_route_answers_with_usage(pipeline, whisper):
    response = _record(pipeline, path="/api/v1/llm/transcriptions", language="en-US", prompt="Revenue, Jakarta")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["text"] == "berapa total revenue per region" and body["language"] == "en"
    assert body["usage"]["latency_ms"] > 0
    assert whisper.requests[0].fields["prompt"] == "Revenue, Jakarta"
    no_language = _record(pipeline, path="/api/v1/llm/transcriptions")
    assert no_language.get_json()["language"] is None and "language" not in whisper.requests[1].fields


def test_a_saved_key_is_used_and_a_request_key_wins_without_being_kept(pipeline, whisper):
    saved = pipeline.call("POST", "/api/v1/llm/keys", json={"provider": "groq", "api_key": TENANT_GROQ_KEY})
    assert saved.status_code == 201, saved.get_json()
    assert _record(pipeline).status_code == 200
    assert whisper.requests[-1].authorization == f"Bearer {TENANT_GROQ_KEY}"
    assert _record(pipeline, apiKey="gsk-request-key-0123456789abcdef").status_code == 200
    assert whisper.requests[-1].authorization == "Bearer gsk-request-key-0123456789abcdef"
    assert _record(pipeline, user="bob").status_code == 200  # bob has no saved key: the server's
    assert whisper.requests[-1].authorization == f"Bearer {SERVER_GROQ_KEY}"


def test_nothing_heard_is_an_empty_transcript_the_frontend_handles(pipeline, whisper, monkeypatch):
    monkeypatch.setattr(whisper, "text", "   ")
    response = _record(pipeline)
    assert response.status_code == 200 and response.get_json()["transcript"] == ""


@pytest.mark.parametrize(("fields", "status", "detail"), [
    ({"file": None}, 400, "Missing audio file field 'file'"),
    ({"clip": b""}, 400, "Empty audio file."),
    ({"clip": b"region,revenue\nNorth,120\n"}, 415, "not audio"),
    ({"clip": b"\x1a\x45\xdf\xa3" + b"x" * (64 * 1024)}, 413, "limit"),
    ({"language": "indonesian"}, 400, "ISO 639-1"),
    ({"prompt": "x" * 1001}, 400, "at most 1000"),
    ({"userId": "bob"}, 403, ""),
])
def test_bad_clips_are_4xx_and_reach_no_provider(pipeline, whisper, fields, status, detail):
    if fields.get("file", "") is None:
        response = pipeline.call("POST", "/speech-to-text", content_type="multipart/form-data",
                                 data={"language": "id"})
    else:
        response = _record(pipeline, **fields)
    assert response.status_code == status, response.get_json()
    assert detail in response.get_json()["detail"]
    assert whisper.requests == []


def test_a_json_body_is_415(pipeline, whisper):
    response = pipeline.call("POST", "/api/v1/llm/transcriptions", json={"file": "aGVsbG8="})
    assert response.status_code == 415 and response.get_json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_rate_limited_provider_is_retried_and_a_refused_key_is_a_clear_error(pipeline, whisper):
    whisper.queue(429, 200)
    assert _record(pipeline).status_code == 200 and len(whisper.requests) == 2
    whisper.queue(401)
    refused = _record(pipeline, path="/api/v1/llm/transcriptions")
    assert refused.status_code == 502 and refused.get_json()["error"]["code"] == "LLM_AUTH"
    assert "server" in refused.get_json()["error"]["message"]  # where the refused key came from
    assert len(whisper.requests) == 3  # a refused key is not retried


def test_voice_counts_against_the_question_limit(pipeline, whisper):
    statuses = [_record(pipeline).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert len(whisper.requests) == 5
