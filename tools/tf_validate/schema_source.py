"""Fetch a pinned provider's npm package once, verify it, and keep its reduced schema in a cache.

The cache lives outside the repository (``$XDG_CACHE_HOME/convoinsight/tf-schema``, else ``~/.cache/...``), so a
fresh clone reuses it; one JSON per provider release, named after the package's integrity and the reduction's
format, so a changed pin or reducer never reads a stale file. The tarball itself is not kept (the largest is
about 30 MB): ``npm pack --prefer-offline`` finds it again in npm's own cache if a schema must be rebuilt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from typing import Any

from tools.tf_validate.jsii_schema import SCHEMA_FORMAT, reduce_assembly
from tools.tf_validate.pins import ProviderPin

ASSEMBLY_MEMBER = "package/.jsii"
NPM_TIMEOUT_SECONDS = 600

TarballFetcher = Callable[[ProviderPin, pathlib.Path], pathlib.Path]


class SchemaUnavailable(Exception):
    """The pinned schema could not be fetched, verified or read."""


def default_cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "convoinsight" / "tf-schema"


def cached_schema_path(pin: ProviderPin, cache_dir: pathlib.Path) -> pathlib.Path:
    digest = hashlib.sha256(pin.integrity.encode()).hexdigest()[:16]
    return cache_dir / f"{pin.local_name}-{pin.version}-{digest}-format{SCHEMA_FORMAT}.json"


def load_schema(pin: ProviderPin, cache_dir: pathlib.Path, fetch: TarballFetcher | None = None) -> dict[str, Any]:
    """Return the pinned provider's reduced schema, building and caching it on first use."""
    cached = cached_schema_path(pin, cache_dir)
    if cached.is_file():
        return json.loads(cached.read_text(encoding="utf-8"))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".fetch-") as workdir:
        tarball = (fetch or npm_pack)(pin, pathlib.Path(workdir))
        verify_integrity(tarball, pin)
        schema = {"provider": {"source": pin.source, "version": pin.version, "package": pin.package_spec},
                  **reduce_assembly(read_assembly(tarball))}
        partial = pathlib.Path(workdir) / cached.name
        partial.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True), encoding="utf-8")
        os.replace(partial, cached)  # atomic: a concurrent or interrupted run never sees half a file
    return schema


def npm_pack(pin: ProviderPin, destination: pathlib.Path) -> pathlib.Path:
    """Download the pinned package's tarball with npm (from npm's cache when it is there) into destination."""
    command = ["npm", "pack", pin.package_spec, "--json", "--prefer-offline", "--pack-destination", str(destination)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SchemaUnavailable(f"{pin.package_spec}: npm pack failed: {error}") from error
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SchemaUnavailable(f"{pin.package_spec}: npm pack exited {result.returncode}: {last_line}")
    try:
        filename = json.loads(result.stdout)[0]["filename"]
    except (ValueError, LookupError) as error:
        raise SchemaUnavailable(f"{pin.package_spec}: npm pack printed no tarball name") from error
    return destination / filename


def verify_integrity(tarball: pathlib.Path, pin: ProviderPin) -> None:
    """Refuse a tarball whose sha512 is not the pinned npm ``dist.integrity``."""
    digest = hashlib.sha512()
    with tarball.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    actual = "sha512-" + base64.b64encode(digest.digest()).decode()
    if actual != pin.integrity:
        raise SchemaUnavailable(f"{pin.package_spec}: tarball integrity {actual} is not the pinned {pin.integrity}")


def read_assembly(tarball: pathlib.Path) -> dict[str, Any]:
    """Stream through the gzipped tarball and parse its ``.jsii`` member alone; nothing is unpacked to disk."""
    with tarfile.open(tarball, mode="r|gz") as archive:
        for member in archive:
            if member.name == ASSEMBLY_MEMBER and member.isfile():
                assembly = json.load(archive.extractfile(member))
                break
        else:
            raise SchemaUnavailable(f"{tarball.name}: no {ASSEMBLY_MEMBER} in the package")
    if assembly.get("schema") == "jsii/file-redirect":
        # Newer jsii may store the assembly compressed behind a redirect; these packages never do.
        raise SchemaUnavailable(f"{tarball.name}: the assembly is a redirect to {assembly.get('filename')}")
    return assembly
