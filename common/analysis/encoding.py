"""Which text encoding a delimited file uses, decided from a sample of its first bytes."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# Longest BOM first: the UTF-8 BOM cannot be confused with the UTF-16 ones, but order keeps that obvious.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)
# IANA charset names (what an HTTP Content-Type says) of the Python codecs a file can be read with; a codec
# missing here is served with no charset rather than a guessed name.
_CHARSETS = {
    "utf-8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "utf-16-le": "utf-16le", "utf-16-be": "utf-16be",
    "mac-roman": "macintosh", "koi8-r": "KOI8-R", "koi8-u": "KOI8-U", "cp437": "IBM437", "cp850": "IBM850",
    "cp866": "IBM866", "shift_jis": "Shift_JIS", "cp932": "windows-31j", "euc_jp": "EUC-JP", "euc_kr": "EUC-KR",
    "big5": "Big5", "gb2312": "GB2312", "gbk": "GBK", "gb18030": "GB18030", "tis-620": "TIS-620",
}
_NUMBERED_CHARSETS = re.compile(r"(?:cp(?P<windows>125[0-8])|iso8859-(?P<iso>[0-9]{1,2}))")
# Single-byte Latin code pages charset-normalizer cannot tell apart on a short sample; cp1252 (Excel on
# Windows) is by far the likeliest source of such a file, so it wins a tie.
_PREFERRED_LEGACY = "cp1252"


@dataclass(frozen=True)
class TextEncoding:
    codec: str  # Python codec that decodes the raw bytes (BOM included)
    label: str  # name reported to the user
    errors: str = "strict"

    @property
    def is_utf8(self) -> bool:
        """Tell whether polars can read the file as it is (UTF-8, with or without BOM)."""
        return self.label == "utf-8"

    @property
    def charset(self) -> str | None:
        """The IANA name of the encoding (``windows-1252``), or None when it has no well-known one."""
        try:
            codec = codecs.lookup(self.codec).name
        except LookupError:
            return None
        numbered = _NUMBERED_CHARSETS.fullmatch(codec)
        if numbered:
            return f"windows-{numbered['windows']}" if numbered["windows"] else f"iso-8859-{numbered['iso']}"
        return _CHARSETS.get(codec)


def bomless_utf16(sample: bytes) -> str | None:
    """Return "utf-16-le"/"utf-16-be" when NUL bytes sit in every other position, as in BOM-less UTF-16."""
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nuls, odd_nuls = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nuls > 0.3 and even_nuls < 0.05:
        return "utf-16-le"
    if even_nuls > 0.3 and odd_nuls < 0.05:
        return "utf-16-be"
    return None


def detect_encoding(sample: bytes, at_eof: bool) -> TextEncoding:
    """Pick the encoding of a text file from its first bytes: BOM, then strict UTF-8, then a guess."""
    for bom, codec, label in _BOMS:
        if sample.startswith(bom):
            return TextEncoding(codec, label)
    utf16 = bomless_utf16(sample)
    if utf16:
        return TextEncoding(utf16, utf16)
    try:
        # final=False tolerates a multi-byte character cut off by the end of the sample.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=at_eof)
        return TextEncoding("utf-8", "utf-8")
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(sample):
        return TextEncoding("utf-8", "utf-8", errors="replace")
    guess = _guess_legacy(sample)
    return TextEncoding(guess, guess)


def fallback_encoding(current: TextEncoding, sample_is_ascii: bool) -> TextEncoding | None:
    """Return the encoding to retry with after ``current`` failed to decode a later part of the file."""
    if current.is_utf8 and sample_is_ascii and current.errors == "strict":
        # Nothing in the sample proved UTF-8; an accented byte further down is most likely cp1252.
        return TextEncoding(_PREFERRED_LEGACY, _PREFERRED_LEGACY)
    if current.codec == _PREFERRED_LEGACY:
        return TextEncoding("latin-1", "latin-1")
    if current.errors == "strict":
        return TextEncoding(current.codec, current.label, errors="replace")
    return None


def _mostly_utf8(sample: bytes) -> bool:
    # Valid multi-byte sequences almost never occur by chance in legacy text, so more of them than broken
    # bytes means a UTF-8 file with a few damaged bytes, not a file in another encoding.
    decoded = sample.decode("utf-8", errors="replace")
    broken = decoded.count("\ufffd")
    non_ascii = len(decoded) - len(decoded.encode("ascii", errors="ignore"))
    return non_ascii - broken > broken


def _guess_legacy(sample: bytes) -> str:
    from charset_normalizer import from_bytes

    results = from_bytes(sample)
    best = results.best()
    if best is None:
        return _decodable(sample)
    tied = [match for match in results if match.chaos <= best.chaos + 0.01]
    if any(_PREFERRED_LEGACY in match.could_be_from_charset for match in tied):
        return _decodable(sample)
    return best.encoding


def _decodable(sample: bytes) -> str:
    try:
        sample.decode(_PREFERRED_LEGACY)
        return _PREFERRED_LEGACY
    except UnicodeDecodeError:
        return "latin-1"  # decodes every byte, so it is the last resort
