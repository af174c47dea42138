"""The pinned provider schemas (providers.yaml): which npm package holds which provider release."""

from __future__ import annotations

import dataclasses
import pathlib

import yaml

PROVIDERS_FILE = pathlib.Path(__file__).with_name("providers.yaml")
_FIELDS = ("source", "version", "package", "package_version", "integrity")


@dataclasses.dataclass(frozen=True)
class ProviderPin:
    """One provider release and the npm package (exact version, sha512 integrity) that carries its schema."""

    local_name: str
    source: str
    version: str
    package: str
    package_version: str
    integrity: str

    @property
    def label(self) -> str:
        return f"{self.local_name} {self.version}"

    @property
    def package_spec(self) -> str:
        return f"{self.package}@{self.package_version}"


def load_pins(path: pathlib.Path = PROVIDERS_FILE) -> dict[str, ProviderPin]:
    """Read providers.yaml into pins by local name; a missing field or a non-sha512 integrity is an error."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    pins: dict[str, ProviderPin] = {}
    for local_name, fields in document.items():
        missing = [field for field in _FIELDS if not (fields or {}).get(field)]
        if missing:
            raise ValueError(f"{path.name}: {local_name} lacks {', '.join(missing)}")
        values = {field: str(fields[field]) for field in _FIELDS}
        if not values["integrity"].startswith("sha512-"):
            raise ValueError(f"{path.name}: {local_name}: integrity must be npm's sha512 dist.integrity")
        pins[local_name] = ProviderPin(local_name=local_name, **values)
    return pins
