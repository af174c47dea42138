"""Retiring an ENCRYPTION_KEYS key, on SQLite, Postgres and Firestore: secrets saved under key A through the
real services, keys rotated to ``B,A``, ``reencrypt`` run; then B alone opens everything and A alone nothing."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest

from common import bootstrap, errors
from common.auth import Tenant
from common.clock import FakeClock
from common.config import Settings
from common.crypto import Encryptor, generate_key
from common.metadata import MetadataStore
from common.services import key_rotation, query_jobs
from common.services.llm_config import stored_keys
from common.services.pipeline.job import JobRequest
from common.services.pipeline.request import credentials_for, job_credentials
from common.services.postgres import connections, engines
from tests.contract.test_metadata_store import _BACKEND_STORES, BACKENDS

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ALICE, BOB = Tenant("alice"), Tenant("bob")
PROVIDER_KEYS = {ALICE: "AIzaSyD-alice-secret-0123456789wxyz", BOB: "AIzaSyD-bob-secret-0123456789abcd"}
REQUEST_KEY = "sk-request-key-0123456789abcdef"
PASSWORD = "p@ss:w/rd?#%&=ü"
MODEL = "gemini/gemini-2.5-flash"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=BACKENDS)
def store(request, clock, tmp_path, unique_prefix) -> Iterator[MetadataStore]:
    """A fresh namespace of each backend the metadata contract runs on (their factories, their clean-up)."""
    stores = _BACKEND_STORES[request.param](clock, tmp_path, unique_prefix)
    make = next(stores)
    yield make()
    engines.ENGINES.clear()  # no pooled connection outlives its test
    next(stores, None)


@pytest.fixture
def key_a() -> str:
    return generate_key()


@pytest.fixture
def key_b() -> str:
    return generate_key()


def ports(store: MetadataStore, clock: FakeClock, tmp_path, keys: str) -> bootstrap.Context:
    """What a function instance would have with ENCRYPTION_KEYS=keys: settings, clock, store, encryptor."""
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"), encryption_keys=keys)
    return bootstrap.Context(settings, clock=clock, metadata=store)


def database() -> connections.ConnectionParams:
    """The test Postgres server when it runs (so a connection can open), else an address that only validates."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["TEST_POSTGRES_URL"]) if os.environ.get("TEST_POSTGRES_URL") else None
    if url is None:
        return connections.ConnectionParams(host="127.0.0.1", port=5432, dbname="sales", user="reader",
                                            password=PASSWORD, sslmode="disable")
    return connections.ConnectionParams(host=url.host, port=url.port or 5432, dbname=url.database,
                                        user=url.username, password=PASSWORD, sslmode="disable")


def save_secrets(deps: bootstrap.Context) -> None:
    """Each kind of secret, through the service that stores it: provider keys, a connection, a sealed key."""
    for tenant, api_key in PROVIDER_KEYS.items():
        stored_keys.save_key(deps.metadata, deps.encryptor, tenant, "gemini", api_key, None, mode="create")
    connections.save(deps, ALICE, "main", database())
    # Sealed as runner.submit seals a request's own key while its question runs.
    sealed = {"api_key": deps.encryptor.encrypt(REQUEST_KEY)}
    for query_id in ("q_running", "q_done"):
        query_jobs.create_job(deps.metadata, ALICE, query_id=query_id, session_id="s1", domain="sales",
                              prompt="revenue by region", request=JobRequest(model_id=MODEL), now=START,
                              secrets=sealed)
    query_jobs.finish_job(deps.metadata, ALICE, "q_done", "succeeded", now=START)  # its key is dropped


def every_secret(deps: bootstrap.Context) -> dict[str, str]:
    """Each saved secret, read back through the path a user's request takes."""
    opened = {f"key:{tenant.user_id}": credentials_for(deps, tenant, MODEL, request_key=None,
                                                      request_api_base=None).api_key for tenant in PROVIDER_KEYS}
    opened["password"] = connections.params_of(deps, connections.get(deps, ALICE, "main")).password
    job = query_jobs.get_job(deps.metadata, ALICE, "q_running")
    opened["request key"] = job_credentials(deps, ALICE, MODEL, job).api_key
    return opened


EXPECTED = {"key:alice": PROVIDER_KEYS[ALICE], "key:bob": PROVIDER_KEYS[BOB], "password": PASSWORD,
            "request key": REQUEST_KEY}


def stored_ciphertexts(store: MetadataStore) -> dict[tuple[str, str, str], str]:
    """Every ciphertext ``SECRET_FIELDS`` names, by (collection, tenant, key)."""
    found = {}
    for field in key_rotation.SECRET_FIELDS:
        for record in store.scan(field.collection):
            value = field.value_in(record.data)
            if value is not None:
                found[(field.collection, record.tenant_id, record.key)] = value
    return found


def test_after_reencryption_the_new_key_alone_opens_everything_and_the_old_one_nothing(store, clock, tmp_path,
                                                                                       key_a, key_b):
    save_secrets(ports(store, clock, tmp_path, key_a))
    rotated = ports(store, clock, tmp_path, f"{key_b},{key_a}")

    report = key_rotation.reencrypt(store, rotated.encryptor)

    assert report["collections"] == {
        "llm_keys": {"rewritten": 2, "current": 0, "remaining_under_old_keys": 0, "undecryptable": 0},
        "pg_connections": {"rewritten": 1, "current": 0, "remaining_under_old_keys": 0, "undecryptable": 0},
        "queries": {"rewritten": 1, "current": 0, "remaining_under_old_keys": 0, "undecryptable": 0},
    }
    assert report["problems"] == [] and report["dry_run"] is False
    only_b, only_a = Encryptor(key_b), Encryptor(key_a)
    ciphertexts = stored_ciphertexts(store)
    assert len(ciphertexts) == 4 and all(only_b.is_current(text) for text in ciphertexts.values())
    assert every_secret(ports(store, clock, tmp_path, key_b)) == EXPECTED  # A retired
    for text in ciphertexts.values():
        with pytest.raises(errors.ConfigurationError):
            only_a.decrypt(text)
    with pytest.raises(errors.ConfigurationError):
        every_secret(ports(store, clock, tmp_path, key_a))
    if os.environ.get("TEST_POSTGRES_URL"):  # the saved connection still opens, with B alone
        assert connections.check_saved(ports(store, clock, tmp_path, key_b), ALICE, "main")["ok"] is True


def test_a_second_pass_rewrites_nothing(store, clock, tmp_path, key_a, key_b):
    save_secrets(ports(store, clock, tmp_path, key_a))
    rotated = ports(store, clock, tmp_path, f"{key_b},{key_a}")
    key_rotation.reencrypt(store, rotated.encryptor)
    revisions = {(r.collection, r.tenant_id, r.key): r.revision
                 for field in key_rotation.SECRET_FIELDS for r in store.scan(field.collection)}

    again = key_rotation.reencrypt(store, rotated.encryptor)

    assert again["totals"] == {"rewritten": 0, "current": 4, "remaining_under_old_keys": 0, "undecryptable": 0}
    assert {(r.collection, r.tenant_id, r.key): r.revision
            for field in key_rotation.SECRET_FIELDS for r in store.scan(field.collection)} == revisions


def test_a_dry_run_counts_what_remains_and_changes_nothing(store, clock, tmp_path, key_a, key_b):
    save_secrets(ports(store, clock, tmp_path, key_a))
    before = stored_ciphertexts(store)

    report = key_rotation.reencrypt(store, Encryptor(f"{key_b},{key_a}"), dry_run=True)

    assert report["dry_run"] is True
    assert report["totals"] == {"rewritten": 0, "current": 0, "remaining_under_old_keys": 4, "undecryptable": 0}
    assert sorted((p["collection"], p["tenant_id"], p["key"]) for p in report["problems"]) == sorted(before)
    assert stored_ciphertexts(store) == before
    assert key_rotation.reencrypt(store, Encryptor(key_a), dry_run=True)["totals"]["current"] == 4


def test_a_ciphertext_no_key_opens_is_reported_and_left_alone(store, clock, tmp_path, key_a, key_b):
    save_secrets(ports(store, clock, tmp_path, key_a))
    # Bob's key was saved under a key since lost (dropped before re-encryption).
    lost = ports(store, clock, tmp_path, generate_key())
    stored_keys.save_key(store, lost.encryptor, BOB, "gemini", PROVIDER_KEYS[BOB], None, mode="replace")
    orphan = store.get("llm_keys", "bob", "gemini")

    report = key_rotation.reencrypt(store, Encryptor(f"{key_b},{key_a}"))

    assert report["collections"]["llm_keys"] == {"rewritten": 1, "current": 0, "remaining_under_old_keys": 0,
                                                 "undecryptable": 1}
    assert report["totals"]["rewritten"] == 3  # the rest of the pass went on
    assert report["problems"] == [{"collection": "llm_keys", "tenant_id": "bob", "key": "gemini",
                                   "problem": "undecryptable"}]
    kept = store.get("llm_keys", "bob", "gemini")
    assert (kept.data, kept.revision) == (orphan.data, orphan.revision)
    assert orphan.data["ciphertext"] not in repr(report) and PROVIDER_KEYS[BOB] not in repr(report)


def test_a_users_save_during_the_pass_is_kept(store, clock, tmp_path, key_a, key_b):
    save_secrets(ports(store, clock, tmp_path, key_a))
    rotated = ports(store, clock, tmp_path, f"{key_b},{key_a}")
    new_key = "AIzaSyD-alice-third-0123456789LMNO"

    class SaveBetweenReadAndWrite:
        """The store, where Alice saves a new key just after the pass has read her old one."""

        def __init__(self):
            self.saved = False

        def __getattr__(self, name):
            return getattr(store, name)

        def get(self, collection, tenant_id, key):
            record = store.get(collection, tenant_id, key)
            if (collection, tenant_id) == ("llm_keys", "alice") and not self.saved:
                self.saved = True
                stored_keys.save_key(store, rotated.encryptor, ALICE, "gemini", new_key, None, mode="replace")
            return record

    report = key_rotation.reencrypt(SaveBetweenReadAndWrite(), rotated.encryptor)

    assert report["collections"]["llm_keys"]["rewritten"] == 1  # Bob's; Alice's was already under B
    assert report["collections"]["llm_keys"]["current"] == 1
    assert every_secret(ports(store, clock, tmp_path, key_b))["key:alice"] == new_key
