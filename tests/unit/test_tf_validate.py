"""tools.tf_validate offline: the checker on small HCL snippets against a hand-written schema, the reduction of a
small jsii assembly shaped like cdktf's, the fetch-and-cache path with a local tarball, and the command."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pathlib
import tarfile

import pytest

from tools.tf_validate.__main__ import main
from tools.tf_validate.hcl_check import check_declaration
from tools.tf_validate.hcl_source import declarations, provider_requirements
from tools.tf_validate.jsii_schema import reduce_assembly
from tools.tf_validate.pins import ProviderPin, load_pins
from tools.tf_validate.schema_source import SchemaUnavailable, cached_schema_path, load_schema
from tools.tf_validate.version_pins import check_requirements


def attrs(*required: str, optional: tuple[str, ...] = ()) -> dict:
    return {**{name: {"required": True} for name in required}, **{name: {"required": False} for name in optional}}


def block(schema: dict, required: bool = False, repeatable: bool = False) -> dict:
    return {"required": required, "repeatable": repeatable, "schema": schema}


BUCKET = {
    "attributes": attrs("name", "location", optional=("labels", "force_destroy")),
    "blocks": {
        "lifecycle_rule": block(repeatable=True, schema={"attributes": {}, "blocks": {
            "action": block(required=True, schema={"attributes": attrs("type"), "blocks": {}}),
            "condition": block(required=True, schema={"attributes": attrs(optional=("age",)), "blocks": {}}),
        }}),
        "versioning": block({"attributes": attrs("enabled"), "blocks": {}}),
    },
}
API = {"attributes": attrs("api_id"), "blocks": {}}
SCHEMAS = {
    "google": {"provider": {"version": "6.50.0"}, "resources": {"google_storage_bucket": BUCKET},
               "data_sources": {"google_project": {"attributes": attrs(optional=("project_id",)), "blocks": {}}}},
    "google-beta": {"provider": {"version": "6.50.0"}, "resources": {"google_storage_bucket": BUCKET,
                                                                    "google_api_gateway_api": API},
                    "data_sources": {}},
}


def problems(hcl: str) -> list[str]:
    return [str(problem) for declaration in declarations(hcl, "main.tf")
            for problem in check_declaration(declaration, SCHEMAS)]


def bucket(body: str) -> str:
    return f'resource "google_storage_bucket" "data" {{\n  name = "b"\n  location = "EU"\n{body}\n}}\n'


RULE = 'lifecycle_rule {\n action { type = "Delete" }\n condition { age = 3 }\n}'


# --- the checker ----------------------------------------------------------------------------------


def test_a_valid_bucket_with_blocks_and_object_arguments_passes():
    assert problems(bucket(f'labels = {{ team = "x" }}\n{RULE}\n{RULE}\nversioning {{ enabled = true }}')) == []


def test_unknown_type_names_the_provider_release():
    assert problems('resource "google_storage_bukket" "x" {}') == [
        "main.tf:1: google_storage_bukket.x: unknown resource type for google 6.50.0"]
    assert problems('data "google_projekt" "x" {}') == [
        "main.tf:1: data.google_projekt.x: unknown data source type for google 6.50.0"]


def test_unknown_argument_with_its_line():
    assert problems("\n\n" + bucket("storage_klass = \"STANDARD\"")) == [
        "main.tf:3: google_storage_bucket.data: unknown argument 'storage_klass'"]


def test_unknown_nested_block_and_argument_name_their_path():
    found = problems(bucket('lifecycle_rule {\n action { type = "Delete" }\n condition { age = 3 }\n'
                            ' when { x = 1 }\n}\nversioning { enabled = true\n mode = "x" }'))
    assert found == ["main.tf:1: google_storage_bucket.data: unknown block 'lifecycle_rule.when'",
                     "main.tf:1: google_storage_bucket.data: unknown argument 'versioning.mode'"]


def test_missing_required_arguments_top_level_and_nested():
    found = problems('resource "google_storage_bucket" "data" {\n name = "b"\n versioning {}\n}')
    assert found == ["main.tf:1: google_storage_bucket.data: missing required argument 'versioning.enabled'",
                     "main.tf:1: google_storage_bucket.data: missing required argument 'location'"]


def test_missing_required_block():
    assert problems(bucket('lifecycle_rule {\n action { type = "Delete" }\n}')) == [
        "main.tf:1: google_storage_bucket.data: missing required block 'lifecycle_rule.condition'"]


def test_a_block_that_may_appear_once_repeated_and_syntax_mixups():
    assert problems(bucket("versioning { enabled = true }\nversioning { enabled = false }")) == [
        "main.tf:1: google_storage_bucket.data: block 'versioning' may appear only once (found 2)"]
    assert problems(bucket("versioning = { enabled = true }")) == [
        "main.tf:1: google_storage_bucket.data: 'versioning' is a block, not an argument: write versioning { ... }"]
    assert problems(bucket("labels {\n team = \"x\"\n}")) == [
        "main.tf:1: google_storage_bucket.data: 'labels' is an argument, not a block: write labels = ..."]
    assert problems(bucket('versioning "v" {\n enabled = true\n}')) == [
        "main.tf:1: google_storage_bucket.data: block 'versioning' takes no labels"]


def test_dynamic_block_counts_as_present_and_its_content_is_checked():
    dynamic_rule = ('dynamic "lifecycle_rule" {\n for_each = var.rules\n iterator = rule\n content {\n'
                    '  action { type = rule.value }\n  dynamic "condition" {\n   for_each = [1]\n'
                    '   content { age = 3 }\n  }\n }\n}')
    assert problems(bucket(dynamic_rule)) == []
    assert problems(bucket(dynamic_rule.replace("age = 3", "ages = 3"))) == [
        "main.tf:1: google_storage_bucket.data: unknown argument 'lifecycle_rule.condition.ages'"]
    assert problems(bucket('dynamic "rule" {\n for_each = []\n content {}\n}')) == [
        "main.tf:1: google_storage_bucket.data: unknown block 'rule' (dynamic)"]
    assert problems(bucket('dynamic "versioning" {\n for_each = []\n content {}\n}')) == [
        "main.tf:1: google_storage_bucket.data: missing required argument 'versioning.enabled'"]


def test_google_beta_resources_are_checked_against_the_beta_schema():
    api = 'resource "google_api_gateway_api" "api" {\n api_id = "a"\n%s}'
    assert problems(api % "") == ["main.tf:1: google_api_gateway_api.api: unknown resource type for google 6.50.0"]
    assert problems(api % " provider = google-beta\n") == []
    assert problems(api % " provider = google-beta.europe\n") == []
    assert problems(api % " provider = awsome\n") == [
        "main.tf:1: google_api_gateway_api.api: provider 'awsome' has no pinned schema "
        "(tools/tf_validate/providers.yaml)"]


def test_meta_arguments_are_allowed_and_only_where_terraform_allows_them():
    meta = ('count = 1\nfor_each = null\ndepends_on = [a.b]\nprovider = google\n'
            'lifecycle {\n prevent_destroy = true\n}\nprovisioner "local-exec" {\n command = "true"\n}\n'
            'connection {\n host = "h"\n}')
    assert problems(bucket(meta)) == []
    assert problems('data "google_project" "this" {\n count = 1\n lifecycle {\n postcondition {\n'
                    '  condition = true\n  error_message = "x"\n }\n }\n}') == []
    assert problems('data "google_project" "this" {\n provisioner "local-exec" {\n command = "true"\n }\n}') == [
        "main.tf:1: data.google_project.this: unknown block 'provisioner'"]


# --- provider requirements ------------------------------------------------------------------------

PIN = ProviderPin("google", "hashicorp/google", "6.50.0", "@cdktf/provider-google", "16.12.1", "sha512-x")


def requirement_problems(version: str, source: str = "hashicorp/google", name: str = "google") -> list[str]:
    text = f'terraform {{\n  required_providers {{\n    {name} = {{\n      source  = "{source}"\n' \
           f'      version = "{version}"\n    }}\n  }}\n}}\n'
    return [str(problem) for problem in check_requirements(provider_requirements(text, "versions.tf"),
                                                           {"google": PIN})]


@pytest.mark.parametrize("version", ["6.50.0", "= 6.50.0", "~> 6.50.0"])
def test_versions_admitting_only_the_checked_release_pass(version):
    assert requirement_problems(version) == []


@pytest.mark.parametrize("version", ["~> 6.0", ">= 6.50.0", "6.49.0", "~> 6.50"])
def test_versions_admitting_other_releases_are_problems(version):
    assert requirement_problems(version) == [
        f"versions.tf:3: required_providers.google: version '{version}': the checked schema is "
        f'hashicorp/google 6.50.0; pin "6.50.0" (or "~> 6.50.0")']


def test_requirement_of_another_source_or_an_unpinned_provider():
    assert requirement_problems("6.50.0", source="someone/google") == [
        "versions.tf:3: required_providers.google: source 'someone/google', but the pinned schema is of "
        "hashicorp/google"]
    assert requirement_problems("1.0.0", name="aws") == [
        "versions.tf:3: required_providers.aws: no pinned schema for this provider (tools/tf_validate/providers.yaml)"]


def test_the_repository_pins_every_provider_by_exact_package_and_integrity():
    pins = load_pins()
    assert set(pins) == {"google", "google-beta", "archive", "random"}
    for pin in pins.values():
        assert pin.package == f"@cdktf/provider-{pin.local_name}" and pin.integrity.startswith("sha512-")
        assert pin.version.count(".") == 2 and pin.package_version.count(".") == 2


# --- reducing a jsii assembly ---------------------------------------------------------------------

LINK = "{@link https://example.test/providers/hashicorp/google/6.50.0/docs/resources/storage_bucket"


def prop(camel: str, snake: str, type_ref: dict, optional: bool = True, where: str = "remarks") -> dict:
    docs = {where: f"Docs at Terraform Registry: {LINK}#{snake} StorageBucket#{snake}}}"}
    if where == "custom":
        docs = {"custom": {"pattern": docs["custom"]}}
    return {"name": camel, "type": type_ref, "docs": docs, **({"optional": True} if optional else {})}


def struct(fqn: str, *properties: dict, interfaces: tuple[str, ...] = ()) -> dict:
    return {"fqn": fqn, "kind": "interface", "datatype": True, "properties": list(properties),
            "interfaces": list(interfaces)}


STRING = {"primitive": "string"}
ASSEMBLY = {"types": {
    "p.bucket.StorageBucket": {
        "fqn": "p.bucket.StorageBucket", "kind": "class", "base": "cdktf.TerraformResource",
        "docs": {"summary": f"Represents a {LINK} google_storage_bucket}}."},
        "initializer": {"parameters": [{"name": "scope"}, {"name": "id"},
                                       {"name": "config", "type": {"fqn": "p.bucket.StorageBucketConfig"}}]},
    },
    "p.bucket.StorageBucketConfig": struct(
        "p.bucket.StorageBucketConfig",
        prop("name", "name", STRING, optional=False),
        prop("labels", "labels", {"collection": {"kind": "map", "elementtype": STRING}}),
        prop("buildAttribute", "build", STRING, where="custom"),
        prop("enableK8SBetaApis", "enable_k8s_beta_apis", {"union": {"types": [{"primitive": "boolean"},
                                                                                {"fqn": "cdktf.IResolvable"}]}}),
        prop("lifecycleRule", "lifecycle_rule", {"union": {"types": [
            {"fqn": "cdktf.IResolvable"},
            {"collection": {"kind": "array", "elementtype": {"fqn": "p.bucket.StorageBucketLifecycleRule"}}}]}}),
        prop("versioning", "versioning", {"fqn": "p.bucket.StorageBucketVersioning"}),
        {"name": "storageClass", "type": STRING, "optional": True, "docs": {"summary": "(link lost)"}},
        interfaces=("cdktf.TerraformMetaArguments",)),
    "p.bucket.StorageBucketLifecycleRule": struct(
        "p.bucket.StorageBucketLifecycleRule",
        prop("action", "action", {"fqn": "p.bucket.StorageBucketLifecycleRuleAction"}, optional=False)),
    "p.bucket.StorageBucketLifecycleRuleAction": struct("p.bucket.StorageBucketLifecycleRuleAction",
                                                        prop("type", "type", STRING, optional=False)),
    "p.bucket.StorageBucketVersioning": struct("p.bucket.StorageBucketVersioning",
                                               prop("enabled", "enabled", {"primitive": "boolean"}, optional=False)),
    "p.bucket.StorageBucketLifecycleRuleList": {"fqn": "p.bucket.StorageBucketLifecycleRuleList", "kind": "class",
                                                "base": "cdktf.ComplexList"},
}}


def test_reduce_assembly_maps_names_requiredness_and_block_shapes():
    reduced = reduce_assembly(ASSEMBLY)
    assert reduced["data_sources"] == {}
    schema = reduced["resources"]["google_storage_bucket"]
    assert schema["attributes"] == {"name": {"required": True}, "labels": {"required": False},
                                    "build": {"required": False}, "enable_k8s_beta_apis": {"required": False},
                                    "storage_class": {"required": False}}
    rule = schema["blocks"]["lifecycle_rule"]
    assert (rule["required"], rule["repeatable"]) == (False, True)
    assert rule["schema"]["blocks"]["action"] == {"required": True, "repeatable": False, "schema": {
        "attributes": {"type": {"required": True}}, "blocks": {}}}
    assert schema["blocks"]["versioning"]["repeatable"] is False


def test_reduce_assembly_refuses_an_assembly_without_resources():
    with pytest.raises(ValueError, match="no Terraform resource"):
        reduce_assembly({"types": {}})


# --- fetching and caching -------------------------------------------------------------------------


def tarball_bytes(assembly: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in (("package/package.json", b"{}"), ("package/.jsii", json.dumps(assembly).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def integrity_of(content: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(content).digest()).decode()


class LocalPackage:
    """A fetcher that writes one prepared tarball and counts its calls (npm stays untouched)."""

    def __init__(self, content: bytes):
        self.content, self.calls = content, 0

    def __call__(self, pin: ProviderPin, destination: pathlib.Path) -> pathlib.Path:
        self.calls += 1
        path = destination / "package.tgz"
        path.write_bytes(self.content)
        return path


def test_schema_is_fetched_once_verified_reduced_and_then_read_from_the_cache(tmp_path):
    content = tarball_bytes(ASSEMBLY)
    pin = ProviderPin("google", "hashicorp/google", "6.50.0", "@cdktf/provider-google", "16.12.1",
                      integrity_of(content))
    fetch = LocalPackage(content)
    first = load_schema(pin, tmp_path, fetch=fetch)
    assert first["provider"] == {"source": "hashicorp/google", "version": "6.50.0",
                                 "package": "@cdktf/provider-google@16.12.1"}
    assert "lifecycle_rule" in first["resources"]["google_storage_bucket"]["blocks"]
    assert load_schema(pin, tmp_path, fetch=fetch) == first and fetch.calls == 1
    assert [path.name for path in tmp_path.iterdir()] == [cached_schema_path(pin, tmp_path).name]


def test_a_tarball_not_matching_the_pinned_integrity_is_refused_and_nothing_is_cached(tmp_path):
    content = tarball_bytes(ASSEMBLY)
    pin = ProviderPin("google", "hashicorp/google", "6.50.0", "@cdktf/provider-google", "16.12.1",
                      integrity_of(content + b"tampered"))
    with pytest.raises(SchemaUnavailable, match="integrity"):
        load_schema(pin, tmp_path, fetch=LocalPackage(content))
    assert list(tmp_path.iterdir()) == []


def test_a_package_without_an_assembly_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/package.json")
        archive.addfile(info, io.BytesIO(b""))
    content = buffer.getvalue()
    pin = ProviderPin("random", "hashicorp/random", "3.7.2", "@cdktf/provider-random", "12.0.1",
                      integrity_of(content))
    with pytest.raises(SchemaUnavailable, match=r"no package/\.jsii"):
        load_schema(pin, tmp_path, fetch=LocalPackage(content))


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def seeded(tmp_path):
    """A providers file and a cache already holding its schema, so the command needs no network."""
    pin = ProviderPin("google", "hashicorp/google", "6.50.0", "@cdktf/provider-google", "16.12.1", "sha512-seeded")
    providers = tmp_path / "providers.yaml"
    providers.write_text("google:\n  source: hashicorp/google\n  version: 6.50.0\n"
                         "  package: '@cdktf/provider-google'\n  package_version: 16.12.1\n"
                         "  integrity: sha512-seeded\n", encoding="utf-8")
    cache = tmp_path / "cache"
    cache.mkdir()
    cached_schema_path(pin, cache).write_text(json.dumps(SCHEMAS["google"]), encoding="utf-8")
    tree = tmp_path / "terraform"
    (tree / "modules" / "storage").mkdir(parents=True)
    return tree, ["--providers", str(providers), "--cache-dir", str(cache)]


def test_command_exits_0_with_a_summary_on_a_clean_tree(seeded, capsys):
    tree, options = seeded
    (tree / "modules" / "storage" / "main.tf").write_text(bucket(RULE) + 'data "google_project" "p" {}\n')
    assert main([str(tree), *options]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "tf-validate: 1 resources and 1 data sources in 1 files checked against google 6.50.0: no problems"]


def test_command_exits_1_and_lists_each_problem(seeded, capsys):
    tree, options = seeded
    (tree / "modules" / "storage" / "main.tf").write_text(bucket("colour = 1") + 'data "google_projekt" "p" {}\n')
    assert main([str(tree), *options]) == 1
    out = capsys.readouterr().out.splitlines()
    main_tf = tree / "modules" / "storage" / "main.tf"
    assert out == [f"{main_tf}:1: google_storage_bucket.data: unknown argument 'colour'",
                   f"{main_tf}:6: data.google_projekt.p: unknown data source type for google 6.50.0",
                   "tf-validate: 1 resources and 1 data sources in 1 files checked against google 6.50.0: 2 problems"]
