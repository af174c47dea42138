"""Key rotation as users and operators meet it: a user's own key replaced (PUT) keeps the active model, the
cleanup function re-encrypts what an older ENCRYPTION_KEYS key protects, and `make rotate-keys`' command does
the same on demand and says by its exit status whether the old key may go."""

from __future__ import annotations

import json

import pytest

from common.crypto import Encryptor, generate_key
from common.metadata.sql import SqlMetadataStore
from common.metadata.sql_engine import create_engine_for
from local_emulator.secrets import with_local_secrets
from tests.integration.conftest import Api, use_settings
from tools import rotate_keys

KEY = "AIzaSyD-alice-secret-0123456789wxyz"
NEW_KEY = "AIzaSyD-alice-second-0123456789QRST"
MODEL = "gemini/gemini-2.5-flash"


@pytest.fixture
def alice(client, keyed) -> Api:
    return Api(client, "alice")


def ciphertext(context, user: str = "alice") -> str:
    return context.metadata.get("llm_keys", user, "gemini").data["ciphertext"]


def test_replacing_ones_own_key_keeps_the_active_model(alice, keyed):
    assert alice.request("POST", "/api/v1/llm/keys", json={"provider": "gemini", "api_key": KEY}).status_code == 201
    chosen = alice.request("PUT", "/api/v1/llm/active",
                           json={"provider": "gemini", "model": MODEL, "params": {"temperature": 0.2}})
    assert chosen.status_code == 200, chosen.get_json()
    key_b = generate_key()
    rotated = use_settings(keyed, encryption_keys=f"{key_b},{keyed.settings.encryption_keys}")

    replaced = alice.request("PUT", "/api/v1/llm/keys/gemini", json={"api_key": NEW_KEY})

    assert replaced.status_code == 200, replaced.get_json()
    assert (replaced.get_json()["is_active"], replaced.get_json()["model"]) == (True, MODEL)
    active = alice.get("/api/v1/llm/active").get_json()
    assert (active["provider"], active["model"], active["params"]) == ("gemini", MODEL, {"temperature": 0.2})
    assert Encryptor(key_b).decrypt(ciphertext(rotated)) == NEW_KEY  # the save used the new first key


def test_the_cleanup_function_reencrypts_under_the_first_key(function_apps, alice, keyed):
    alice.request("POST", "/api/v1/llm/keys", json={"provider": "gemini", "api_key": KEY})
    key_a, key_b = keyed.settings.encryption_keys, generate_key()
    rotated = use_settings(keyed, encryption_keys=f"{key_b},{key_a}")
    cleanup = function_apps["cleanup"].test_client()
    before = ciphertext(rotated)

    checked = cleanup.post("/cleanup?dry_run=true").get_json()["secrets"]
    assert checked["dry_run"] is True and checked["collections"]["llm_keys"]["remaining_under_old_keys"] == 1
    assert ciphertext(rotated) == before
    done = cleanup.post("/cleanup").get_json()["secrets"]

    assert done["collections"]["llm_keys"] == {"rewritten": 1, "current": 0, "remaining_under_old_keys": 0,
                                               "undecryptable": 0}
    assert Encryptor(key_b).decrypt(ciphertext(rotated)) == KEY
    # The owner reads the re-encryption in their own trail (intent, then outcome), made by the system.
    trail = alice.get("/api/v1/audit?action=secrets.reencrypt").get_json()
    events = trail["items"]
    assert sorted(event["outcome"] for event in events) == ["attempted", "success"], trail
    assert {(event["actor"], event["resource"]) for event in events} == {("system", "llm_keys/gemini")}
    assert not {KEY, before, ciphertext(rotated)} & set(json.dumps(trail).split('"'))
    use_settings(keyed, encryption_keys=key_b)  # A retired: the key is still the user's
    assert alice.get("/api/v1/llm/keys/gemini").get_json()["last4"] == "…wxyz"
    assert cleanup.post("/cleanup").get_json()["secrets"]["totals"]["rewritten"] == 0


def test_the_cleanup_function_without_encryption_keys_skips_the_step(function_apps, ctx):
    answer = function_apps["cleanup"].test_client().post("/cleanup").get_json()
    assert answer["secrets"] == {"skipped": "ENCRYPTION_KEYS is not set", "dry_run": False}
    assert "sessions" in answer  # the other steps ran


@pytest.fixture
def local_data(tmp_path, monkeypatch):
    """An emulator's data directory with a SQLite metadata file; the command reads it from DATA_DIR."""
    for name in ("ENCRYPTION_KEYS", "DATABASE_URL", "METADATA_BACKEND", "COLLECTION_PREFIX", "CLOUD_SQL_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    engine = create_engine_for("", data_dir=str(data_dir))
    yield str(data_dir), SqlMetadataStore(engine)
    engine.dispose()


def run_command(capsys, *args: str) -> tuple[int, dict | None]:
    status = rotate_keys.main(list(args))
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip() else None


def test_the_command_reencrypts_and_exits_zero_only_when_nothing_is_left(local_data, monkeypatch, capsys):
    from common.auth import Tenant
    from common.services.llm_config import stored_keys

    _, store = local_data
    key_a, key_b = generate_key(), generate_key()
    stored_keys.save_key(store, Encryptor(key_a), Tenant("alice"), "gemini", KEY, None, mode="create")
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{key_b},{key_a}")

    status, checked = run_command(capsys, "--dry-run")
    assert status == 1 and checked["totals"]["remaining_under_old_keys"] == 1
    status, done = run_command(capsys)
    assert status == 0 and done["totals"]["rewritten"] == 1
    assert Encryptor(key_b).decrypt(store.get("llm_keys", "alice", "gemini").data["ciphertext"]) == KEY
    assert KEY not in json.dumps(done)

    monkeypatch.setenv("ENCRYPTION_KEYS", key_a)  # the retired key alone: nothing opens
    status, stale = run_command(capsys)
    assert status == 1 and stale["totals"]["undecryptable"] == 1


def test_the_command_uses_the_emulators_kept_keys_and_never_makes_new_ones(local_data, capsys):
    import os

    from common.auth import Tenant
    from common.config import Settings
    from common.services.llm_config import stored_keys
    from local_emulator.secrets import FILE_NAME

    data_dir, store = local_data
    assert run_command(capsys) == (2, None)  # no keys anywhere: refuses, and makes none
    assert not os.path.exists(os.path.join(data_dir, FILE_NAME))
    settings = with_local_secrets(Settings.from_env({}, data_dir=data_dir))  # what the emulator makes on start
    stored_keys.save_key(store, Encryptor(settings.encryption_keys), Tenant("alice"), "gemini", KEY, None,
                         mode="create")

    status, report = run_command(capsys)

    assert status == 0 and report["collections"]["llm_keys"]["current"] == 1
