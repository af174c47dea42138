"""Speech to text: the frontend records a voice question and asks it as soon as it comes back as text.

The original spent the server's Groq key for any caller (LEGACY_API.md §6 D2). Here the caller is
authenticated and counted against the ``query`` rate limit, and the key follows the same precedence as a
question's: the request's ``apiKey`` > the tenant's saved key for the speech model's provider > the server's.
A clip is checked before any paid call: it must be non-empty, under ``STT_MAX_BYTES``, and its first bytes
must be one of the audio containers Whisper-style models accept, whatever its name says.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from common import errors
from common.auth import Tenant
from common.llm.models import provider_of
from common.ports import QuestionPorts
from common.uploads import ReceivedFile

MAX_PROMPT_CHARS = 1000
# ISO 639-1 (Whisper's own codes), optionally with a region that is dropped: "id", "en-US", "pt_BR".
_LANGUAGE = re.compile(r"([a-z]{2})(?:[-_][a-z0-9]{2,8})?")
_HEAD_BYTES = 12


@dataclasses.dataclass(frozen=True)
class SpeechRequest:
    clip: ReceivedFile
    language: str | None = None
    prompt: str | None = None
    api_key: str | None = None


def parse_request(clip: ReceivedFile | None, fields: dict[str, Any], *,
                  default_language: str | None = None) -> SpeechRequest:
    """Check a clip and its form fields (``language`` or ``languageCode``, ``prompt``, ``apiKey``)."""
    if clip is None:
        raise errors.BadRequest("Missing audio file field 'file' (multipart/form-data).", code="MISSING_FIELD")
    if clip.size == 0:
        raise errors.BadRequest("Empty audio file.", code="EMPTY_FILE")
    raw_language = fields.get("language") or fields.get("languageCode") or default_language
    language = None
    if raw_language:
        match = _LANGUAGE.fullmatch(str(raw_language).strip().lower())
        if match is None:
            raise errors.BadRequest("language must be an ISO 639-1 code such as 'id' or 'en'",
                                    code="INVALID_LANGUAGE")
        language = match.group(1)
    prompt = (fields.get("prompt") or "").strip() or None
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise errors.BadRequest(f"prompt may have at most {MAX_PROMPT_CHARS} characters", code="PROMPT_TOO_LONG")
    return SpeechRequest(clip, language, prompt, (fields.get("apiKey") or "").strip() or None)


def transcribe(deps: QuestionPorts, tenant: Tenant, request: SpeechRequest) -> dict[str, Any]:
    """Turn the clip into text with ``STT_MODEL``; an empty transcript is an answer, not an error."""
    from common.services.pipeline.request import credentials_for

    with open(request.clip.path, "rb") as handle:
        audio = handle.read()
    content_type = audio_type(audio[:_HEAD_BYTES])
    if content_type is None:
        raise errors.UnsupportedMediaType("the file is not audio that can be transcribed: send WebM, Ogg, WAV, "
                                          "FLAC, MP3 or MP4/M4A", code="UNSUPPORTED_AUDIO")
    model_id = deps.settings.stt_model
    credentials = credentials_for(deps, tenant, model_id, request_key=request.api_key,
                                  request_api_base=None)
    transcript = deps.llm.transcribe(audio, filename=_filename(request.clip.filename, content_type),
                                     content_type=content_type, model_id=model_id, credentials=credentials,
                                     language=request.language, prompt=request.prompt)
    call = transcript.call
    return {"transcript": transcript.text, "language": request.language, "model": model_id,
            "provider": provider_of(model_id),
            "usage": {"latency_ms": round(call.latency_ms, 1), "cost_usd": call.cost_usd,
                      "cost_known": call.cost_known}}


def audio_type(head: bytes) -> str | None:
    """Name the audio container by its magic bytes (None: not one a transcription model takes)."""
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"  # EBML: WebM or Matroska, what browsers' MediaRecorder writes
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"  # an ID3 tag, or an MPEG audio frame's sync bits
    if head[4:8] == b"ftyp":
        return "audio/mp4"  # MP4/M4A, what Safari records
    return None


_EXTENSIONS = {"audio/webm": ".webm", "audio/ogg": ".ogg", "audio/wav": ".wav", "audio/flac": ".flac",
               "audio/mpeg": ".mp3", "audio/mp4": ".m4a"}


def _filename(name: str, content_type: str) -> str:
    # Providers pick the decoder by the file name's extension, so it must say what the bytes are.
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", name.rsplit(".", 1)[0])[:64] or "clip"
    return stem + _EXTENSIONS[content_type]
