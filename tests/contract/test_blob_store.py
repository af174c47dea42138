"""The BlobStore contract (see ``common/storage/__init__.py``), checked on every backend.

``gcs`` runs against the GCS emulator named by STORAGE_EMULATOR_HOST, with a fresh bucket per test.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from common.storage.gcs import GcsBlobStore
from common.storage.local import LocalBlobStore
from tests.conftest import require_service
from tests.doubles import anonymous_signing_credentials

MIB = 1024 * 1024
BIG_FILE_BYTES = 40 * MIB
NON_UTF8 = bytes(range(256)) * 3 + b"\xff\xfe\x00\xc3\x28"
UNSAFE_KEYS = ["../x", "a/../../x", "a//b", "a/./b", "a\\b", "a\x00b", "a\nb", "", "/abs", "a/"]
UNSAFE_PREFIXES = [key for key in UNSAFE_KEYS if key not in {"", "a/"}]  # both are valid prefixes


def _gcs_client(endpoint: str):
    from google.cloud import storage

    # Anonymous to the emulator, yet able to sign URLs locally, as a service account would.
    return storage.Client(
        project="test-proj", credentials=anonymous_signing_credentials(), client_options={"api_endpoint": endpoint}
    )


@pytest.fixture(params=["local", "gcs"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(str(tmp_path / "store"))
    return request.getfixturevalue("gcs_store")


@pytest.fixture
def gcs_store():
    client = _gcs_client(require_service("STORAGE_EMULATOR_HOST", "GCS emulator"))
    bucket = client.create_bucket(f"contract-{uuid.uuid4().hex[:16]}")
    yield GcsBlobStore(bucket.name, client)
    bucket.delete(force=True)


@pytest.fixture
def big_file(tmp_path):
    """A file of random bytes, larger than GCS's one-request upload and several times any chunk the stores use."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(BIG_FILE_BYTES))
    return path


def _keys(store, prefix=""):
    return [info.key for info in store.list(prefix)]


def _peak_memory_of(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_put_then_get_returns_the_same_bytes(store):
    store.put("tenants/t1/raw.bin", NON_UTF8)
    store.put("tenants/t1/empty", b"")

    assert store.get("tenants/t1/raw.bin") == NON_UTF8
    assert store.get("tenants/t1/empty") == b""


def test_put_returns_what_stat_reports(store):
    written = store.put("a/report.csv", b"x,y\n1,2\n")

    assert store.stat("a/report.csv") == written
    assert (written.key, written.size, written.content_type) == ("a/report.csv", 8, "text/csv")
    assert abs(written.updated - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_content_type_is_kept_when_given_and_guessed_from_the_key_otherwise(store):
    store.put("a/upload", b"x,y\n", content_type="text/csv")
    store.put("a/chart.png", b"\x89PNG", content_type="application/vnd.custom")
    store.put("a/plain.json", b"{}")
    store.put("a/unknown", b"?")

    types = {info.key: info.content_type for info in store.list("a/")}

    assert types == {
        "a/upload": "text/csv",
        "a/chart.png": "application/vnd.custom",
        "a/plain.json": "application/json",
        "a/unknown": "application/octet-stream",
    }
    store.put("a/upload", b"raw")  # a rewrite without a type forgets the old one
    assert store.stat("a/upload").content_type == "application/octet-stream"


def test_put_file_streams_a_large_file(store, big_file):
    peak = _peak_memory_of(lambda: store.put_file("big/data.bin", str(big_file)))

    assert peak < BIG_FILE_BYTES / 2, f"put_file held {peak / MIB:.1f} MiB at once"
    assert store.stat("big/data.bin").size == BIG_FILE_BYTES
    assert store.get("big/data.bin") == big_file.read_bytes()


def test_open_streams_without_fetching_the_whole_object(store, big_file):
    store.put_file("big/data.bin", str(big_file))
    expected = big_file.read_bytes()
    first_bytes = []

    def read_head():
        with store.open("big/data.bin") as reader:
            first_bytes.append(reader.read(1000))

    peak = _peak_memory_of(read_head)

    assert first_bytes == [expected[:1000]]
    assert peak < BIG_FILE_BYTES / 2, f"reading 1000 bytes held {peak / MIB:.1f} MiB"
    with store.open("big/data.bin") as reader:
        assert reader.read(10) == expected[:10]
        assert reader.read() == expected[10:]


def test_overwrite_replaces_content_and_changes_generation(store):
    first = store.put("k/v.txt", b"one")
    second = store.put("k/v.txt", b"two!")

    assert store.get("k/v.txt") == b"two!"
    assert store.stat("k/v.txt").size == 4
    assert first.generation != second.generation
    assert store.stat("k/v.txt").generation == second.generation


def test_every_write_gets_a_new_generation_even_with_identical_bytes(store):
    generations = [store.put("k/same", b"same").generation for _ in range(20)]

    assert len(set(generations)) == 20


@pytest.mark.parametrize(
    "operation",
    [
        lambda store, tmp_path: store.get("no/such/key"),
        lambda store, tmp_path: store.open("no/such/key").read(),
        lambda store, tmp_path: store.stat("no/such/key"),
        lambda store, tmp_path: store.delete("no/such/key"),
        lambda store, tmp_path: store.download("no/such/key", str(tmp_path / "out.bin")),
    ],
    ids=["get", "open", "stat", "delete", "download"],
)
def test_a_missing_key_raises_not_found(store, tmp_path, operation):
    store.put("no/such/other", b"neighbour")

    with pytest.raises(NotFound):
        operation(store, tmp_path)
    assert not (tmp_path / "out.bin").exists()


def test_a_prefix_of_other_keys_is_not_an_object(store):
    store.put("dir/file", b"x")

    assert not store.exists("dir")
    with pytest.raises(NotFound):
        store.stat("dir")
    with pytest.raises(NotFound):
        store.get("dir")


def test_exists_follows_put_and_delete(store):
    assert not store.exists("e/x")
    store.put("e/x", b"1")
    assert store.exists("e/x")
    store.delete("e/x")
    assert not store.exists("e/x")
    assert _keys(store) == []


def test_list_is_ordered_by_key_and_filtered_by_prefix(store):
    # "a-b" < "a.txt" < "a/..." < "a0" by key, though a directory walk would visit "a/" before "a-b".
    keys = ["c", "a0", "a/sub/z", "ab/x", "a/1", "a-b", "a.txt", "a/0", "b/2"]
    for key in keys:
        store.put(key, key.encode())

    assert _keys(store) == sorted(keys)
    assert _keys(store, "a/") == ["a/0", "a/1", "a/sub/z"]
    assert _keys(store, "a") == ["a-b", "a.txt", "a/0", "a/1", "a/sub/z", "a0", "ab/x"]
    assert _keys(store, "a/sub") == ["a/sub/z"]
    assert _keys(store, "zzz/") == []


def test_list_reports_each_object_as_stat_does(store):
    store.put("l/one.txt", b"1")
    store.put("l/deep/two.bin", b"22")

    listed = list(store.list("l/"))

    assert listed == [store.stat("l/deep/two.bin"), store.stat("l/one.txt")]


def test_delete_prefix_removes_only_what_is_under_it_and_counts(store):
    for key in ["p/1", "p/2", "p/deep/3", "pq/x", "other"]:
        store.put(key, b"x")

    assert store.delete_prefix("p/") == 3
    assert _keys(store) == ["other", "pq/x"]
    assert store.delete_prefix("p/") == 0


@pytest.mark.parametrize("key", UNSAFE_KEYS, ids=repr)
def test_unsafe_keys_are_refused_by_every_method(store, tmp_path, key):
    source = tmp_path / "source.bin"
    source.write_bytes(b"data")
    calls = [
        lambda: store.put(key, b"data"),
        lambda: store.put_file(key, str(source)),
        lambda: store.get(key),
        lambda: store.open(key),
        lambda: store.download(key, str(tmp_path / "out.bin")),
        lambda: store.local_path(key),
        lambda: store.stat(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ]
    for call in calls:
        with pytest.raises(BadRequest):
            call()
    assert _keys(store) == []


@pytest.mark.parametrize("prefix", UNSAFE_PREFIXES, ids=repr)
def test_unsafe_prefixes_are_refused(store, prefix):
    store.put("x/y", b"kept")

    with pytest.raises(BadRequest):
        store.list(prefix)
    with pytest.raises(BadRequest):
        store.delete_prefix(prefix)
    assert _keys(store) == ["x/y"]


def test_readers_never_see_a_partial_object_during_overwrites(store):
    payloads = (b"A" * (3 * MIB), b"b" * (4 * MIB + 17))
    store.put("race/obj", payloads[0])
    writing = threading.Event()
    writing.set()

    def write():
        try:
            for round_number in range(30):
                store.put("race/obj", payloads[round_number % 2])
        finally:
            writing.clear()

    def read_while_writing(via_open):
        reads, bad_reads = 0, []
        while writing.is_set():
            if via_open:
                with store.open("race/obj") as reader:
                    data = reader.read()
            else:
                data = store.get("race/obj")
            reads += 1
            if data not in payloads:
                bad_reads.append((len(data), data[:1], data[-1:]))
        return reads, bad_reads

    with ThreadPoolExecutor(max_workers=4) as pool:
        readers = [pool.submit(read_while_writing, via_open) for via_open in (False, True, False)]
        pool.submit(write).result()
        results = [reader.result() for reader in readers]  # re-raises whatever a reader hit

    assert [bad_reads for _, bad_reads in results] == [[], [], []]
    assert sum(reads for reads, _ in results) > 0


def test_download_copies_the_object_to_a_file(store, tmp_path):
    store.put("d/data.bin", NON_UTF8)
    target = tmp_path / "downloaded.bin"
    target.write_bytes(b"old contents that are longer than nothing" * 100)

    store.download("d/data.bin", str(target))

    assert target.read_bytes() == NON_UTF8


def test_local_path_is_readable_in_place_or_none_when_remote(store):
    store.put("lp/file.bin", NON_UTF8)

    path = store.local_path("lp/file.bin")

    if isinstance(store, GcsBlobStore):
        assert path is None
    else:
        with open(path, "rb") as local_file:
            assert local_file.read() == NON_UTF8


def test_ping_passes_on_a_healthy_store(store):
    store.ping()


# Backend-specific behaviour the contract cannot state for every store.


def test_local_store_never_writes_outside_its_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    store = LocalBlobStore(str(root))

    for key in UNSAFE_KEYS + ["link/secret", "link/new"]:
        with pytest.raises(BadRequest):
            store.put(key, b"overwritten")
        with pytest.raises(BadRequest):
            store.get(key)
        with pytest.raises(BadRequest):
            store.delete(key)
    with pytest.raises(BadRequest):
        store.delete_prefix("link/")

    assert sorted(os.listdir(tmp_path)) == ["outside", "root"]
    assert os.listdir(outside) == ["secret"]
    assert (outside / "secret").read_bytes() == b"secret"
    assert os.listdir(root) == ["link"]


def test_local_delete_removes_directories_left_empty(tmp_path):
    store = LocalBlobStore(str(tmp_path / "root"))
    # A content type the extension does not give is kept in a file beside the object, which must go too.
    store.put("tenants/t1/datasets/d1/raw.csv", b"x", content_type="text/plain")
    store.put("tenants/t2/kept.csv", b"y")

    store.delete("tenants/t1/datasets/d1/raw.csv")

    assert os.listdir(tmp_path / "root" / "tenants") == ["t2"]


def test_local_failed_write_leaves_the_old_object_and_no_temp_file(tmp_path, monkeypatch):
    store = LocalBlobStore(str(tmp_path / "root"))
    store.put("f/obj", b"old")

    def fail_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(ServiceUnavailable):
        store.put("f/obj", b"new")
    monkeypatch.undo()

    assert store.get("f/obj") == b"old"
    assert os.listdir(tmp_path / "root" / "f") == ["obj"]


def test_local_list_skips_what_a_crashed_write_left_behind(tmp_path):
    store = LocalBlobStore(str(tmp_path / "root"))
    store.put("f/obj", b"kept")
    (tmp_path / "root" / "f" / "\\tmp-0123456789abcdef").write_bytes(b"half a write")

    assert _keys(store) == ["f/obj"]
    assert store.delete_prefix("f/") == 1


def test_local_key_cannot_be_both_an_object_and_a_prefix(tmp_path):
    store = LocalBlobStore(str(tmp_path / "root"))
    store.put("a/b", b"1")

    with pytest.raises(Conflict):
        store.put("a", b"2")
    with pytest.raises(Conflict):
        store.put("a/b/c", b"3")
    assert _keys(store) == ["a/b"]


def test_local_ping_fails_when_the_root_is_not_a_directory(tmp_path):
    (tmp_path / "file").write_bytes(b"")

    with pytest.raises(ServiceUnavailable):
        LocalBlobStore(str(tmp_path / "file")).ping()


def test_gcs_ping_fails_for_a_missing_bucket_or_an_unreachable_server():
    host = require_service("STORAGE_EMULATOR_HOST", "GCS emulator")

    with pytest.raises(ServiceUnavailable, match="does not exist"):
        GcsBlobStore(f"missing-{uuid.uuid4().hex[:12]}", _gcs_client(host)).ping()
    # Port 1 on loopback: nothing listens there, and no traffic leaves the machine.
    with pytest.raises(ServiceUnavailable):
        GcsBlobStore("any-bucket", _gcs_client("http://127.0.0.1:1")).ping()


def test_gcs_reader_reports_an_object_deleted_mid_read_as_not_found(gcs_store, big_file):
    gcs_store.put_file("big/data.bin", str(big_file))

    with gcs_store.open("big/data.bin") as reader:
        reader.read(1000)  # fetches only the first chunk
        gcs_store.delete("big/data.bin")
        with pytest.raises(NotFound):
            reader.read()


def test_an_upload_url_takes_the_file_or_the_store_says_it_signs_none(store):
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    target = store.upload_url("tenants/a/uploads/u1/big.csv", expires_at=expires, max_bytes=1000)
    if isinstance(store, LocalBlobStore):
        assert target is None  # the datasets function receives local uploads itself
        return
    import urllib.request

    assert target.method == "PUT" and target.headers["x-goog-content-length-range"] == "0,1000"
    request = urllib.request.Request(target.url, data=b"a,b\n1,2\n", method="PUT", headers=target.headers)
    with urllib.request.urlopen(request, timeout=30) as response:  # the emulator, on loopback
        assert response.status == 200
    assert store.get("tenants/a/uploads/u1/big.csv") == b"a,b\n1,2\n"


def test_local_store_does_not_sign_urls(tmp_path):
    store = LocalBlobStore(str(tmp_path / "store"))
    store.put("a/b.html", b"x")
    assert store.signed_url("a/b.html", expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                            content_type="text/html") is None


def test_gcs_signs_v4_urls_with_a_service_account_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.cloud import storage
    from google.oauth2 import service_account

    host = require_service("STORAGE_EMULATOR_HOST", "GCS emulator")
    # A throwaway key: signing is local arithmetic, nothing is sent anywhere.
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    credentials = service_account.Credentials.from_service_account_info({
        "type": "service_account", "client_email": "charts@test-proj.iam.gserviceaccount.com",
        "private_key": private_key, "private_key_id": "k1", "token_uri": f"{host}/token", "project_id": "test-proj"})
    client = storage.Client(project="test-proj", credentials=credentials)
    store = GcsBlobStore("any-bucket", client)
    url = store.signed_url("tenants/a/charts/c1/chart.html", expires_at=dt.datetime.now(dt.UTC)
                           + dt.timedelta(hours=1), content_type="text/html")
    assert "tenants/a/charts/c1/chart.html" in url and "X-Goog-Signature=" in url
    assert "response-content-type=text%2Fhtml" in url and "response-content-disposition=inline" in url
    assert int(url.split("X-Goog-Expires=")[1].split("&")[0]) in (3599, 3600)
