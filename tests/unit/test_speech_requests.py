"""A voice clip is checked before any paid call: present, non-empty, audio by its bytes, a sane language."""

from __future__ import annotations

import pytest

from common import errors
from common.services import speech
from common.uploads import ReceivedFile


def _clip(size: int = 10) -> ReceivedFile:
    return ReceivedFile("file", "voice.webm", "/nonexistent", size, "audio/webm")


@pytest.mark.parametrize(("head", "content_type"), [
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81", "audio/webm"),
    (b"OggS\x00\x02\x00\x00\x00\x00\x00\x00", "audio/ogg"),
    (b"RIFF\x24\x08\x00\x00WAVE", "audio/wav"),
    (b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00", "audio/flac"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    (b"\xff\xfb\x90\x64\x00\x00\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    (b"\x00\x00\x00\x20ftypM4A \x00\x00", "audio/mp4"),
    (b"region,reven", None), (b"%PDF-1.7\n%\xe2\xe3", None), (b"PK\x03\x04\x14\x00", None), (b"", None),
])
def test_audio_is_recognised_by_its_bytes_not_its_name(head, content_type):
    assert speech.audio_type(head) == content_type


@pytest.mark.parametrize(("given", "language"), [("id", "id"), ("EN", "en"), ("en-US", "en"), ("pt_BR", "pt"),
                                                 (" id ", "id"), (None, None), ("", None)])
def test_languages_are_iso_639_1_codes(given, language):
    assert speech.parse_request(_clip(), {"language": given}).language == language


@pytest.mark.parametrize("given", ["indonesian", "e", "en-", "12", "en-US-x-private-too-long"])
def test_other_languages_are_refused(given):
    with pytest.raises(errors.BadRequest, match="ISO 639-1"):
        speech.parse_request(_clip(), {"language": given})


def test_the_originals_field_names_and_default_language_are_kept():
    assert speech.parse_request(_clip(), {"languageCode": "en"}).language == "en"
    assert speech.parse_request(_clip(), {}, default_language="id").language == "id"
    request = speech.parse_request(_clip(), {"prompt": "  Jakarta  ", "apiKey": " gsk-x "})
    assert (request.prompt, request.api_key) == ("Jakarta", "gsk-x")


def test_a_missing_or_empty_clip_is_a_400():
    with pytest.raises(errors.BadRequest, match="Missing audio file"):
        speech.parse_request(None, {})
    with pytest.raises(errors.BadRequest, match="Empty audio file"):
        speech.parse_request(_clip(size=0), {})
