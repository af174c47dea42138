"""The chart render worker: a child process that owns vl-convert, so a spec that exhausts memory or runs long
kills or stalls only this process, never the server that asked for the chart.

``renderer.ChartRenderer`` runs it as ``python -I worker.py <memory_mb> <cpu_seconds>``. It needs only the
standard library and vl_convert (``-I``: nothing from the caller's environment or working directory is
imported); the server imports this module only for the framing functions, never vl_convert.

Protocol over stdin/stdout, one reply per request, in order. A frame is two big-endian u32 (header length,
body length), a JSON header, then the body bytes.
- Once started, the worker sends ``{"ready": true, "vegalite_version", "baseline_mb", "memory_limited"}``.
- Requests: ``{"op": "svg" | "png" | "bundle", "scale"}`` with the spec as JSON in the body (svg, png).
- Replies: ``{"ok": true}`` with the SVG text, PNG bytes or JavaScript bundle as the body, or ``{"ok": false,
  "kind": "spec" | "too_expensive" | "internal", "message"}``; ``"retire": true`` asks to be replaced.

Memory. ``RLIMIT_AS`` cannot bound V8: it reserves address space it never touches (measured: VmPeak ~67 GB for
a two-bar chart), so no useful limit lets a chart render. ``RLIMIT_DATA`` counts private writable memory
instead, which is what a render commits. The idle engine already holds ~580 MB of it (V8's 512 MB rwx code
range, counted though barely resident; ~85 MB resident in all), so the limit is set after a warm-up render
to that baseline plus the budget: a render may commit ``memory_mb`` more. Past it an allocation fails and
V8 aborts the process (SIGTRAP), which the server reports as CHART_TOO_EXPENSIVE. A worker that ends a
render holding over half its budget asks to be retired, so what one chart leaves cannot fail the next.

Time. The server kills the worker when a render outlives its timeout. vl-convert holds the GIL while it
renders, so no thread in here could notice a vanished server; a CPU-time limit (``RLIMIT_CPU``, raised before
each request) ends a render the server can no longer stop, and the next read ends the worker at EOF.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import struct
import sys
from typing import Any, BinaryIO

# Bounds the memory of one PNG (4 bytes a pixel): a huge width or many wide bands could otherwise exhaust it.
MAX_PNG_PIXELS = 16_000_000
MAX_FRAME_BYTES = 512 * 1024 * 1024
_FRAME = struct.Struct(">II")
_WARM_UP = {"mark": "bar", "data": {"values": [{"a": "x", "b": 1}]},
            "encoding": {"x": {"field": "a", "type": "nominal"}, "y": {"field": "b", "type": "quantitative"}}}
_SVG_SIZE = re.compile(r"<svg\b[^>]*?\bwidth=\"([\d.]+)\"[^>]*?\bheight=\"([\d.]+)\"")


class Refused(Exception):
    """A render the worker will not do; ``kind`` says which error the server raises."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


def encode_frame(header: dict, body: bytes = b"") -> bytes:
    """Return one protocol frame."""
    meta = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return _FRAME.pack(len(meta), len(body)) + meta + body


def frame_sizes(prefix: bytes) -> tuple[int, int]:
    """Return the header and body lengths a frame's first 8 bytes announce."""
    header_length, body_length = _FRAME.unpack(prefix)
    if header_length + body_length > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {header_length + body_length} bytes is too large")
    return header_length, body_length


def read_frame(stream: BinaryIO) -> tuple[dict, bytes]:
    """Read one frame from a blocking stream; raise ``EOFError`` at its end."""
    header_length, body_length = frame_sizes(_read_exactly(stream, _FRAME.size))
    header = json.loads(_read_exactly(stream, header_length))
    return header, _read_exactly(stream, body_length)


def newest_v5(versions: list[str]) -> str:
    """The newest Vega-Lite 5 of ``versions`` (specs are v5; vl-convert's default is a later major)."""
    fives = [v for v in versions if v.split(".")[0] in ("5", "v5")]
    if not fives:
        raise RuntimeError("this vl-convert bundles no Vega-Lite 5")
    return max(fives, key=lambda v: tuple(int(part) for part in v.lstrip("v").split(".")))


def fitting_scale(svg: str, scale: float) -> float:
    """Return ``scale``, lowered so the PNG stays under ``MAX_PNG_PIXELS``; refuse an image that cannot."""
    size = _SVG_SIZE.search(svg[:2000])
    if size is None:
        raise Refused("spec", "the chart could not be rendered: the renderer gave no image size")
    pixels = float(size.group(1)) * float(size.group(2))
    if pixels > MAX_PNG_PIXELS:
        raise Refused("too_expensive", f"the chart is too large to render ({size.group(1)} x {size.group(2)} "
                                       "pixels): make it smaller or show fewer categories")
    return min(scale, math.sqrt(MAX_PNG_PIXELS / max(pixels, 1.0)))


def spec_reason(exc: Exception) -> str:
    """The first line of a vl-convert error that says what is wrong with the spec."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = [line for line in lines if not line.endswith("failed:") and not line.startswith("at ")]
    return f"the chart could not be rendered: {(telling or lines or ['unknown error'])[0][:300]}"


def main(argv: list[str]) -> int:
    """Warm up, limit memory, then answer requests until stdin ends."""
    budget_bytes, cpu_seconds = int(argv[1]) * 1024 * 1024, int(argv[2])
    requests = sys.stdin.buffer
    # Frames go to a private copy of stdout; anything the engine prints to fd 1 lands on stderr instead.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    import vl_convert

    version = newest_v5(vl_convert.get_vegalite_versions())
    vl_convert.vegalite_to_svg(_WARM_UP, vl_version=version, allowed_base_urls=[])
    baseline = _data_bytes()
    limited = baseline is not None and _set_limit(resource.RLIMIT_DATA, baseline + budget_bytes)
    _send(replies, {"ready": True, "vegalite_version": version, "memory_limited": limited,
                    "baseline_mb": round((baseline or 0) / 2**20)})
    while True:
        try:
            header, body = read_frame(requests)
        except EOFError:
            return 0
        _limit_cpu(cpu_seconds)
        reply, payload = _handle(vl_convert, version, header, body)
        now = _data_bytes()
        reply["retire"] = baseline is not None and now is not None and now > baseline + budget_bytes // 2
        _send(replies, reply, payload)


def _handle(vl_convert: Any, version: str, header: dict, body: bytes) -> tuple[dict, bytes]:
    try:
        if header.get("op") == "bundle":
            return {"ok": True}, vl_convert.javascript_bundle(vl_version=version).encode("utf-8")
        svg = vl_convert.vegalite_to_svg(json.loads(body), vl_version=version, allowed_base_urls=[])
        if header.get("op") == "svg":
            return {"ok": True}, svg.encode("utf-8")
        scale = fitting_scale(svg, float(header.get("scale", 2)))
        return {"ok": True}, bytes(vl_convert.svg_to_png(svg, scale=scale))
    except Refused as exc:
        return {"ok": False, "kind": exc.kind, "message": exc.message}, b""
    except MemoryError:
        return {"ok": False, "kind": "too_expensive", "message": "the chart needs too much memory to render"}, b""
    except ValueError as exc:  # vl-convert reports a spec it cannot compile or draw as ValueError
        return {"ok": False, "kind": "spec", "message": spec_reason(exc)}, b""
    except Exception as exc:  # noqa: BLE001 - reported to the server, which raises its own error
        return {"ok": False, "kind": "internal", "message": f"{type(exc).__name__}: {str(exc)[:300]}"}, b""


def _send(stream: BinaryIO, header: dict, body: bytes = b"") -> None:
    stream.write(encode_frame(header, body))
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise EOFError("the stream ended inside a frame" if data else "the stream ended")
    return data


def _data_bytes() -> int | None:
    """This process's private writable memory (VmData), which RLIMIT_DATA limits; None where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _set_limit(which: int, soft: int) -> bool:
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY and soft > hard:
        return False
    resource.setrlimit(which, (soft, hard))
    return True


def _limit_cpu(seconds: int) -> None:
    """Allow the next request ``seconds`` of CPU time more than used so far (all threads count)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _set_limit(resource.RLIMIT_CPU, int(usage.ru_utime + usage.ru_stime) + seconds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
