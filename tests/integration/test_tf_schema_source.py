"""The real provider schemas `make tf-validate` checks against: fetched from npm (once; then from the cache
outside the repository), verified against the pinned integrity and reduced to what Terraform accepts."""

from __future__ import annotations

import pathlib

import pytest

from tools.tf_validate.pins import ProviderPin, load_pins
from tools.tf_validate.schema_source import SchemaUnavailable, default_cache_dir, load_schema, npm_pack


def fetch_or_skip(pin: ProviderPin, destination: pathlib.Path) -> pathlib.Path:
    """npm pack, skipping only when npm itself cannot fetch (no npm, no registry); integrity still fails hard."""
    try:
        return npm_pack(pin, destination)
    except SchemaUnavailable as error:
        pytest.skip(f"npm cannot fetch {pin.package_spec} and no cached schema: {error}")


@pytest.fixture(scope="module")
def schemas():
    return {name: load_schema(pin, default_cache_dir(), fetch=fetch_or_skip) for name, pin in load_pins().items()}


def test_google_storage_bucket_has_its_required_arguments_and_nested_blocks(schemas):
    assert schemas["google"]["provider"]["version"] == "6.50.0"
    bucket = schemas["google"]["resources"]["google_storage_bucket"]
    assert bucket["attributes"]["name"] == {"required": True}
    assert bucket["attributes"]["location"] == {"required": True}
    assert bucket["attributes"]["force_destroy"] == {"required": False}
    assert "self_link" not in bucket["attributes"]  # computed only: the configuration cannot set it
    rule = bucket["blocks"]["lifecycle_rule"]
    assert (rule["required"], rule["repeatable"]) == (False, True)
    assert rule["schema"]["blocks"]["action"]["required"] and rule["schema"]["blocks"]["condition"]["required"]
    assert rule["schema"]["blocks"]["action"]["schema"]["attributes"]["type"] == {"required": True}
    assert bucket["blocks"]["versioning"]["schema"]["attributes"] == {"enabled": {"required": True}}


def test_each_provider_knows_what_only_it_manages(schemas):
    assert "google_api_gateway_api" in schemas["google-beta"]["resources"]
    assert "google_api_gateway_api" not in schemas["google"]["resources"]
    assert "google_project" in schemas["google"]["data_sources"]
    assert schemas["random"]["resources"]["random_password"]["attributes"]["length"] == {"required": True}
    archive = schemas["archive"]["data_sources"]["archive_file"]
    assert archive["blocks"]["source"]["repeatable"] and archive["attributes"]["output_path"]["required"]
