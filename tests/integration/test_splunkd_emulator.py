"""The splunkd emulator, exercised only through the libraries the add-on uses (solnlib 7.0.0, splunklib 2.1.1).

Each test states a splunkd behaviour the add-on depends on and checks it over HTTP(S), so the emulator
cannot drift from what those libraries need.
"""

import copy
import functools
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
import solnlib.utils
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from solnlib import conf_manager
from solnlib.conf_manager import ConfManager
from solnlib.credentials import CredentialManager
from solnlib.modular_input.checkpointer import KVStoreCheckpointer
from solnlib.soln_exceptions import ConfManagerException, ConfStanzaNotExistException
from splunklib import binding, client, data

from harness.splunkd import CREDENTIAL_CHUNK_LENGTH, CREDENTIAL_END_MARK, CREDENTIAL_SEPARATOR, SplunkdEmulator

APP = "TA_aws_cloudtrail"
ACCOUNT_CONF = "ta_aws_cloudtrail_account"
IAM_ROLE_CONF = "ta_aws_cloudtrail_iam_role"
SETTINGS_CONF = "ta_aws_cloudtrail_settings"
PROGRESS_COLLECTION = "ta_aws_cloudtrail_progress"
# Characters that break naive XML, form or JSON handling.
SECRET = 's3cr3t/Key+&<b>"quoted"\'é€'
EXTERNAL_ID = "ext-7f3a&<id>"
PROXY_PASSWORD = "pr0xy&pass"

SEED: Dict[str, Any] = {
    "accounts": {
        "acct1": {
            "credential_type": "access_key",
            "aws_access_key_id": "AKIAEXAMPLE000000001",
            "aws_secret_access_key": SECRET,
            "partition": "aws",
        },
        "acct2": {
            "credential_type": "access_key",
            "aws_access_key_id": "AKIAEXAMPLE000000002",
            "aws_secret_access_key": "second-secret",
            "partition": "aws-us-gov",
        },
    },
    "iam_roles": {
        "role1": {
            "role_arn": "arn:aws:iam::123456789012:role/R",
            "external_id": EXTERNAL_ID,
            "session_duration": 3600,
        }
    },
    "settings": {
        "proxy": {
            "proxy_enabled": True,
            "proxy_type": "http",
            "proxy_url": "127.0.0.1",
            "proxy_port": "3128",
            "proxy_username": "u",
            "proxy_password": PROXY_PASSWORD,
        },
        "logging": {"loglevel": "DEBUG"},
    },
    "inputs": {
        "aws_cloudtrail_sqs://my_input": {
            "account": "acct1",
            "sqs_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/trail",
            "index": "main",
        }
    },
}


@pytest.fixture
def splunkd() -> Iterator[SplunkdEmulator]:
    with SplunkdEmulator(copy.deepcopy(SEED)) as emulator:
        yield emulator
    assert emulator.internal_errors == []


@pytest.fixture
def plain_splunkd() -> Iterator[SplunkdEmulator]:
    with SplunkdEmulator(copy.deepcopy(SEED), tls=False) as emulator:
        yield emulator
    assert emulator.internal_errors == []


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """solnlib retries every HTTP error 3 times after 1, 2 and 4 s; record the pauses instead of waiting."""
    sleeps: List[float] = []
    monkeypatch.setattr(solnlib.utils, "time", SimpleNamespace(sleep=sleeps.append))
    return sleeps


def _where(emulator: SplunkdEmulator) -> Dict[str, Any]:
    return {"scheme": emulator.scheme, "host": emulator.host, "port": emulator.port}


def _conf_manager(emulator: SplunkdEmulator, conf: str, session_key: Optional[str] = None) -> ConfManager:
    return ConfManager(session_key or emulator.session_key, APP, realm=emulator.ucc_realm(conf), **_where(emulator))


def _service(emulator: SplunkdEmulator) -> client.Service:
    return client.Service(token=emulator.session_key, app=APP, owner="nobody", **_where(emulator))


def _checkpointer(emulator: SplunkdEmulator) -> KVStoreCheckpointer:
    return KVStoreCheckpointer(PROGRESS_COLLECTION, emulator.session_key, APP, **_where(emulator))


# --- conf files and encrypted fields -----------------------------------------------------------------


def test_account_secret_is_decrypted_through_the_ucc_realm(splunkd: SplunkdEmulator) -> None:
    stanza = _conf_manager(splunkd, ACCOUNT_CONF).get_conf(ACCOUNT_CONF).get("acct1")

    assert stanza["aws_secret_access_key"] == SECRET
    assert stanza["aws_access_key_id"] == "AKIAEXAMPLE000000001"
    assert stanza["eai:appName"] == APP
    assert stanza["disabled"] == "0"
    assert splunkd.conf_stanza(ACCOUNT_CONF, "acct1")["aws_secret_access_key"] == "******"
    assert splunkd.count_requests("GET", f"/properties/{ACCOUNT_CONF}") == 1
    assert splunkd.count_requests("GET", "/storage/passwords") == 1


def test_get_all_decrypts_every_account(splunkd: SplunkdEmulator) -> None:
    stanzas = _conf_manager(splunkd, ACCOUNT_CONF).get_conf(ACCOUNT_CONF).get_all()

    assert {name: s["aws_secret_access_key"] for name, s in stanzas.items()} == {
        "acct1": SECRET,
        "acct2": "second-secret",
    }
    assert stanzas["acct2"]["partition"] == "aws-us-gov"


def test_iam_role_external_id_is_decrypted(splunkd: SplunkdEmulator) -> None:
    role = _conf_manager(splunkd, IAM_ROLE_CONF).get_conf(IAM_ROLE_CONF).get("role1")

    assert role["external_id"] == EXTERNAL_ID
    assert role["role_arn"] == "arn:aws:iam::123456789012:role/R"
    assert role["session_duration"] == "3600"


def test_secret_longer_than_255_characters_is_chunked_and_read_back() -> None:
    long_secret = "ÄB&<xyz" * 100
    seed = {"accounts": {"long": {"aws_access_key_id": "AKIA", "aws_secret_access_key": long_secret}}}
    with SplunkdEmulator(seed) as emulator:
        realm = emulator.ucc_realm(ACCOUNT_CONF)
        stanza = _conf_manager(emulator, ACCOUNT_CONF).get_conf(ACCOUNT_CONF).get("long")
        entries = _service(emulator).storage_passwords.list(count=-1, search=f"realm={realm}")

        stored_text = json.dumps({"aws_secret_access_key": long_secret})
        chunk_count = -(-len(stored_text) // CREDENTIAL_CHUNK_LENGTH)
        assert stanza["aws_secret_access_key"] == long_secret
        assert sorted(entry.username for entry in entries) == sorted(
            f"long{CREDENTIAL_SEPARATOR}{n}" for n in range(1, chunk_count + 2)
        )
        assert all(len(entry.clear_password) <= CREDENTIAL_CHUNK_LENGTH for entry in entries)
        assert entries[-1].clear_password == CREDENTIAL_END_MARK
        assert emulator.clear_password(realm, "long") == stored_text
        assert emulator.internal_errors == []


def test_plain_unchunked_password_entry_is_read(splunkd: SplunkdEmulator) -> None:
    realm = splunkd.ucc_realm(ACCOUNT_CONF)
    splunkd.add_password(realm, "legacy", '{"aws_secret_access_key": "old-style"}', chunked=False)

    manager = CredentialManager(splunkd.session_key, APP, realm=realm, **_where(splunkd))

    assert manager.get_password("legacy") == '{"aws_secret_access_key": "old-style"}'
    assert splunkd.clear_password(realm, "legacy") == '{"aws_secret_access_key": "old-style"}'


def test_update_with_encrypt_keys_stores_placeholder_and_a_fresh_manager_decrypts(
    splunkd: SplunkdEmulator,
) -> None:
    realm = splunkd.ucc_realm(ACCOUNT_CONF)
    accounts = _conf_manager(splunkd, ACCOUNT_CONF).get_conf(ACCOUNT_CONF)
    second_secret = "rotated-" + "x" * 300

    accounts.update(
        "acct3",
        {"aws_access_key_id": "AKIA3", "aws_secret_access_key": "first"},
        encrypt_keys=["aws_secret_access_key"],
    )
    # Rotating the secret creates entries that exist already: solnlib gets 409 and updates them.
    accounts.update("acct3", {"aws_secret_access_key": second_secret}, encrypt_keys=["aws_secret_access_key"])

    assert splunkd.conf_stanza(ACCOUNT_CONF, "acct3") == {
        "aws_access_key_id": "AKIA3",
        "aws_secret_access_key": "******",
    }
    fresh = _conf_manager(splunkd, ACCOUNT_CONF).get_conf(ACCOUNT_CONF).get("acct3")
    assert fresh["aws_secret_access_key"] == second_secret
    assert ("POST", f"/servicesNS/nobody/{APP}/storage/passwords", 409) in splunkd.requests

    accounts.delete("acct3")

    assert splunkd.conf_stanza(ACCOUNT_CONF, "acct3") is None
    assert splunkd.clear_password(realm, "acct3") is None


def test_input_stanza_named_with_scheme_is_read_and_updated(splunkd: SplunkdEmulator) -> None:
    inputs = ConfManager(splunkd.session_key, APP, **_where(splunkd)).get_conf("inputs")

    inputs.update("aws_cloudtrail_sqs://my_input", {"index": "cloudtrail"})
    inputs.update("aws_cloudtrail_sqs://second input", {"account": "acct2"})

    assert inputs.get("aws_cloudtrail_sqs://my_input")["index"] == "cloudtrail"
    assert splunkd.conf_stanza("inputs", "aws_cloudtrail_sqs://second input") == {"account": "acct2"}
    assert sorted(inputs.get_all()) == ["aws_cloudtrail_sqs://my_input", "aws_cloudtrail_sqs://second input"]


def test_missing_conf_missing_stanza_and_unknown_endpoint(splunkd: SplunkdEmulator) -> None:
    manager = _conf_manager(splunkd, ACCOUNT_CONF)

    with pytest.raises(ConfManagerException):
        manager.get_conf("no_such_conf")
    with pytest.raises(ConfStanzaNotExistException):
        manager.get_conf(ACCOUNT_CONF).get("no_such_account")
    with pytest.raises(binding.HTTPError) as unknown:
        _service(splunkd).get("no/such/endpoint")
    assert unknown.value.status == 404
    assert b'<msg type="ERROR">Not Found</msg>' in unknown.value.body


# Module-scoped: hypothesis runs many examples against one emulator. Plain HTTP because each unpooled
# solnlib call over HTTPS spends ~20 ms loading the system CA store (client side), and escaping does
# not depend on the transport.
@pytest.fixture(scope="module")
def shared_splunkd() -> Iterator[SplunkdEmulator]:
    with SplunkdEmulator(copy.deepcopy(SEED), tls=False) as emulator:
        yield emulator
    assert emulator.internal_errors == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(value="carriage\rreturn\r\n")
@example(value="&amp; <tag attr=\"v\"> 'q' ]]>")
@example(value=" padded é€ \u2028 \t")
@given(
    value=st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\n\r&<>\"'=;%+#/"),
        min_size=1,
        max_size=40,
    ).filter(str.strip)
)
def test_any_text_survives_the_form_and_atom_round_trip(shared_splunkd: SplunkdEmulator, value: str) -> None:
    # (A value of only whitespace reads back as None: splunklib drops blank text, as with a real splunkd.)
    inputs = ConfManager(shared_splunkd.session_key, APP, **_where(shared_splunkd)).get_conf("inputs")

    inputs.update("aws_cloudtrail_sqs://escaping", {"exclude_event_names": value})

    assert inputs.get("aws_cloudtrail_sqs://escaping")["exclude_event_names"] == value


def test_log_level_and_proxy_helpers_read_the_settings_conf(
    splunkd: SplunkdEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # solnlib 7.0.0's helpers build their ConfManager without scheme/host/port, which only works inside
    # Splunk (SPLUNK_HOME); point them at the emulator as that environment would.
    monkeypatch.setattr(conf_manager, "ConfManager", functools.partial(ConfManager, **_where(splunkd)))
    logger = logging.getLogger("test_splunkd_emulator")

    level = conf_manager.get_log_level(
        logger=logger, session_key=splunkd.session_key, app_name=APP, conf_name=SETTINGS_CONF
    )
    proxy = conf_manager.get_proxy_dict(logger, splunkd.session_key, APP, SETTINGS_CONF)

    assert level == "DEBUG"
    assert proxy == {
        "proxy_enabled": "1",
        "proxy_type": "http",
        "proxy_url": "127.0.0.1",
        "proxy_port": "3128",
        "proxy_username": "u",
        "proxy_password": PROXY_PASSWORD,
    }


def test_log_level_falls_back_to_the_default_without_a_logging_stanza(monkeypatch: pytest.MonkeyPatch) -> None:
    with SplunkdEmulator({"settings": {"proxy": {"proxy_enabled": "0"}}}) as emulator:
        monkeypatch.setattr(conf_manager, "ConfManager", functools.partial(ConfManager, **_where(emulator)))

        level = conf_manager.get_log_level(
            logger=logging.getLogger("test_splunkd_emulator"),
            session_key=emulator.session_key,
            app_name=APP,
            conf_name=SETTINGS_CONF,
        )

        assert level == "INFO"
        assert emulator.count_requests("GET", f"/configs/conf-{SETTINGS_CONF}/logging") == 1


# --- authentication ----------------------------------------------------------------------------------


def test_wrong_session_key_is_refused_with_401_and_leaks_nothing(
    splunkd: SplunkdEmulator,
    retry_sleeps: List[float],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture,
) -> None:
    manager = _conf_manager(splunkd, ACCOUNT_CONF, session_key="not-a-session-key")

    with pytest.raises(binding.HTTPError) as refused:
        manager.get_conf(ACCOUNT_CONF).get("acct1")

    assert refused.value.status == 401
    assert b'<msg type="WARN">call not properly authenticated</msg>' in refused.value.body
    assert retry_sleeps == [1, 2, 4]
    assert {status for _, _, status in splunkd.requests} == {401}
    captured = capsys.readouterr()
    visible = "".join([str(refused.value), repr(refused.value), caplog.text, captured.out, captured.err])
    assert SECRET not in visible
    assert splunkd.session_key not in visible


def test_login_issues_a_session_cookie_and_rejects_a_wrong_password(splunkd: SplunkdEmulator) -> None:
    service = client.connect(username="admin", password="changeme", app=APP, owner="nobody", **_where(splunkd))

    assert f"splunkd_{splunkd.port}" in service.get_cookies()
    assert "acct1" in [stanza.name for stanza in service.confs[ACCOUNT_CONF].list()]
    with pytest.raises(binding.AuthenticationError) as refused:
        client.connect(username="admin", password="wrong", **_where(splunkd))
    assert refused.value.status == 401


def test_given_session_key_works_as_splunk_and_bearer_token_and_users_can_log_in() -> None:
    with SplunkdEmulator(copy.deepcopy(SEED), session_key="fixed-key", users={"svc": "pw"}) as emulator:
        bearer = client.Service(splunkToken="fixed-key", app=APP, owner="nobody", **_where(emulator))
        logged_in = client.connect(username="svc", password="pw", app=APP, owner="nobody", **_where(emulator))

        assert emulator.session_key == "fixed-key"
        assert [stanza.name for stanza in _service(emulator).confs["inputs"].list()] == [
            "aws_cloudtrail_sqs://my_input"
        ]
        assert [stanza.name for stanza in bearer.confs["inputs"].list()] == ["aws_cloudtrail_sqs://my_input"]
        assert [stanza.name for stanza in logged_in.confs["inputs"].list()] == ["aws_cloudtrail_sqs://my_input"]
        with pytest.raises(binding.AuthenticationError):
            client.connect(username="admin", password="changeme", **_where(emulator))
        assert emulator.internal_errors == []


# --- storage/passwords and EAI listing ------------------------------------------------------------------


def test_storage_passwords_create_conflict_search_and_delete(splunkd: SplunkdEmulator) -> None:
    passwords = _service(splunkd).storage_passwords

    created = passwords.create("pa:ss", "user1", "realm:with:colons")
    with pytest.raises(binding.HTTPError) as conflict:
        passwords.create("other", "user1", "realm:with:colons")
    found = passwords.list(count=-1, search="realm=realm:with:colons")

    assert created.name == "realm\\:with\\:colons:user1:"
    assert conflict.value.status == 409
    assert [(entry.realm, entry.username, entry.clear_password) for entry in found] == [
        ("realm:with:colons", "user1", "pa:ss")
    ]
    assert found[0]["password"] == "********"
    assert "pa:ss" not in found[0].encrypted_password

    # An entity's own link escapes the colons; StoragePasswords.delete(user, realm) does not, so a realm
    # holding ":" can only be deleted through the entity.
    found[0].delete()
    passwords.create("pw", "user2", "plain_realm")
    passwords.delete("user2", "plain_realm")

    assert splunkd.clear_password("realm:with:colons", "user1") is None
    assert splunkd.clear_password("plain_realm", "user2") is None
    with pytest.raises(KeyError):
        passwords.delete("user2", "plain_realm")


def test_conf_listing_pages_by_30_by_default_and_answers_json() -> None:
    seed = {"inputs": {f"aws_cloudtrail_sqs://input{n:02}": {"index": f"idx{n}"} for n in range(31)}}
    with SplunkdEmulator(seed) as emulator:
        service = _service(emulator)

        feed = data.load(service.get("configs/conf-inputs").body.read().decode("utf-8")).feed
        page = json.loads(service.get("configs/conf-inputs", count=2, offset=29, output_mode="json").body.read())
        searched = service.confs["inputs"].list(count=-1, search="index=idx3")

        assert feed.totalResults == "31"
        assert len(feed.entry) == 30
        assert page["paging"] == {"total": 31, "perPage": 2, "offset": 29}
        assert [(e["name"], e["content"]["index"]) for e in page["entry"]] == [
            ("aws_cloudtrail_sqs://input29", "idx29"),
            ("aws_cloudtrail_sqs://input30", "idx30"),
        ]
        assert page["entry"][0]["acl"]["app"] == APP
        assert page["entry"][0]["content"]["disabled"] is False
        assert sorted(stanza.name for stanza in searched) == [
            "aws_cloudtrail_sqs://input03",
            "aws_cloudtrail_sqs://input30",
        ]
        assert emulator.internal_errors == []


# --- KV store ----------------------------------------------------------------------------------------------


def test_checkpointer_creates_its_collection_then_updates_reads_and_deletes(splunkd: SplunkdEmulator) -> None:
    checkpointer = _checkpointer(splunkd)
    config_path = f"/servicesNS/nobody/{APP}/storage/collections/config"

    # Paths are recorded as sent: splunklib leaves a trailing "/" on a collection it has addressed by name.
    assert splunkd.requests == [
        ("GET", f"{config_path}/{PROGRESS_COLLECTION}", 404),
        ("POST", f"{config_path}/", 201),
        ("GET", f"{config_path}/", 200),
    ]
    assert _service(splunkd).kvstore[PROGRESS_COLLECTION].content["field.state"] == "string"

    checkpointer.update("obj1", {"offset": 10})
    checkpointer.batch_update([{"_key": "obj2", "state": {"offset": 3}}, {"_key": "obj1", "state": {"offset": 20}}])

    assert checkpointer.get("obj1") == {"offset": 20}
    assert checkpointer.get("obj2") == {"offset": 3}
    assert splunkd.kv_documents(PROGRESS_COLLECTION) == [
        {"_key": "obj1", "state": '{"offset": 20}', "_user": "nobody"},
        {"_key": "obj2", "state": '{"offset": 3}', "_user": "nobody"},
    ]

    checkpointer.delete("obj1")
    checkpointer.delete("never-saved")

    assert checkpointer.get("obj1") is None
    assert [d["_key"] for d in splunkd.kv_documents(PROGRESS_COLLECTION)] == ["obj2"]
    _checkpointer(splunkd)
    assert splunkd.count_requests("POST", "/storage/collections/config") == 1


def test_kvstore_collection_batch_save_and_query_semantics(splunkd: SplunkdEmulator) -> None:
    kvstore = _service(splunkd).kvstore
    kvstore.create(
        "trail_objects", fields={"size": "number", "bucket": "string"}, accelerated_fields={"by_bucket": {"bucket": 1}}
    )
    collection = kvstore["trail_objects"]
    with pytest.raises(binding.HTTPError) as duplicate:
        kvstore.create("trail_objects")
    objects = collection.data

    keys = objects.batch_save(
        {"_key": "a", "bucket": "b1", "size": 1},
        {"_key": "b", "bucket": "b2", "size": 5},
        {"_key": "c", "bucket": "b1", "size": "2"},
        {"_key": "d", "bucket": "zeta", "size": 10, "tags": ["x", "y"]},
        {"bucket": "b3", "size": 3.5},
    )

    def matching(query: dict, **options: Any) -> List[str]:
        return [document["_key"] for document in objects.query(query=json.dumps(query), **options)]

    assert duplicate.value.status == 409
    assert collection.content["field.size"] == "number"
    assert collection.content["accelerated_fields.by_bucket"] == {"bucket": 1}
    assert keys[:4] == ["a", "b", "c", "d"]
    assert len(keys[4]) == 24
    # Range operators compare numbers with numbers and strings with strings only.
    assert matching({"$or": [{"size": {"$lt": 3}}, {"bucket": "zeta"}]}, sort="_key") == ["a", "d"]
    assert matching({"size": {"$gte": "1"}}) == ["c"]
    assert matching({"$and": [{"bucket": "b1"}, {"size": {"$ne": 1}}]}) == ["c"]
    assert matching({"size": {"$not": {"$gt": 4}}}, sort="size") == ["a", keys[4], "c"]
    assert matching({"tags": "y"}) == ["d"]
    assert matching({"_key": "b"}) == ["b"]
    assert matching({}, sort="size:-1", skip=1, limit=2) == ["d", "b"]
    assert objects.query(query=json.dumps({"_key": "a"}), fields="bucket") == [{"_key": "a", "bucket": "b1"}]
    malformed_queries = ["{not json", "[]", json.dumps({"$where": "1"}), json.dumps({"$not": {"size": 1}})]
    for malformed in malformed_queries:
        with pytest.raises(binding.HTTPError) as rejected:
            objects.query(query=malformed)
        assert rejected.value.status == 400

    objects.delete(query=json.dumps({"bucket": "b1"}))
    objects.update("b", {"bucket": "b9"})

    assert sorted(matching({})) == sorted(["b", "d", keys[4]])
    assert objects.query_by_id("b") == {"_key": "b", "bucket": "b9", "_user": "nobody"}
    with pytest.raises(binding.HTTPError) as missing:
        objects.query_by_id("a")
    assert missing.value.status == 404
    assert json.loads(missing.value.body) == {"messages": [{"type": "ERROR", "text": "Could not find object."}]}
    with pytest.raises(binding.HTTPError) as taken:
        objects.insert({"_key": "b"})
    assert taken.value.status == 409

    objects.delete()
    kvstore.delete("trail_objects")

    assert splunkd.kv_collections() == []
    with pytest.raises(binding.HTTPError) as gone:
        objects.query()
    assert gone.value.status == 404


def test_concurrent_checkpointers_lose_no_update(splunkd: SplunkdEmulator) -> None:
    _checkpointer(splunkd)  # creates the collection once, before the race

    def save_objects(worker: int) -> None:
        checkpointer = _checkpointer(splunkd)
        for n in range(20):
            checkpointer.update(f"w{worker}-o{n}", {"offset": n})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(save_objects, range(8)))

    documents = splunkd.kv_documents(PROGRESS_COLLECTION)
    assert len(documents) == 160
    assert {d["_key"] for d in documents} == {f"w{w}-o{n}" for w in range(8) for n in range(20)}


def test_batch_save_of_more_than_1000_documents_is_rejected(splunkd: SplunkdEmulator) -> None:
    kvstore = _service(splunkd).kvstore
    kvstore.create("bulk")
    bulk = kvstore["bulk"].data

    with pytest.raises(binding.HTTPError) as rejected:
        bulk.batch_save(*({"n": n} for n in range(1001)))
    assert rejected.value.status == 400
    assert b"limit is 1000" in rejected.value.body
    assert splunkd.kv_documents("bulk") == []

    assert len(bulk.batch_save(*({"n": n} for n in range(1000)))) == 1000


def test_kv_outage_fails_every_kv_call_until_cleared(splunkd: SplunkdEmulator) -> None:
    service = _service(splunkd)
    service.kvstore.create("events")
    events = service.kvstore["events"].data
    events.insert({"_key": "e1"})

    splunkd.set_kv_outage(503)
    with pytest.raises(binding.HTTPError) as listing:
        service.kvstore.list()
    with pytest.raises(binding.HTTPError) as reading:
        events.query()
    # Conf files and passwords do not depend on the KV store.
    account = _conf_manager(splunkd, ACCOUNT_CONF).get_conf(ACCOUNT_CONF).get("acct1")
    splunkd.set_kv_outage(None)

    assert (listing.value.status, reading.value.status) == (503, 503)
    assert json.loads(reading.value.body)["messages"][0]["type"] == "ERROR"
    assert account["aws_secret_access_key"] == SECRET
    assert [document["_key"] for document in events.query()] == ["e1"]


def test_kv_save_delay_holds_back_batch_saves_only(splunkd: SplunkdEmulator) -> None:
    service = _service(splunkd)
    service.kvstore.create("events")
    events = service.kvstore["events"].data
    events.insert({"_key": "e1", "n": 1})
    splunkd.set_kv_save_delay(1.0)

    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        saving = pool.submit(_service(splunkd).kvstore["events"].data.batch_save, {"_key": "e1", "n": 2})
        time.sleep(0.3)
        assert splunkd.kv_saves_delayed == 1
        # meanwhile reads and inserts are answered, and the save is not applied yet
        assert [document["n"] for document in events.query()] == [1]
        events.insert({"_key": "e2", "n": 3})
        assert not saving.done()
        saving.result(timeout=5)
        assert time.monotonic() - started >= 1.0
    splunkd.set_kv_save_delay(0)
    assert sorted(document["n"] for document in events.query()) == [2, 3]


def test_checkpointer_gives_up_after_solnlib_retries_during_a_kv_outage(
    plain_splunkd: SplunkdEmulator, retry_sleeps: List[float]
) -> None:
    # Plain HTTP: solnlib mounts its urllib3 retry policy (5 tries on 5xx, ~9 s) on https:// only.
    checkpointer = _checkpointer(plain_splunkd)
    plain_splunkd.set_kv_outage(503)

    with pytest.raises(binding.HTTPError) as failed:
        checkpointer.update("obj", {"offset": 1})
    plain_splunkd.set_kv_outage(None)
    checkpointer.update("obj", {"offset": 2})

    assert failed.value.status == 503
    assert retry_sleeps == [1, 2, 4]
    assert plain_splunkd.count_requests("POST", "/batch_save") == 5
    assert checkpointer.get("obj") == {"offset": 2}


# --- pause / resume and transport ----------------------------------------------------------------------


def test_pause_refuses_connections_and_resume_keeps_port_and_state(plain_splunkd: SplunkdEmulator) -> None:
    checkpointer = _checkpointer(plain_splunkd)  # a pooled, keep-alive requests session
    checkpointer.update("obj", {"offset": 7})
    service = _service(plain_splunkd)
    port = plain_splunkd.port

    plain_splunkd.pause()
    with pytest.raises(ConnectionRefusedError):
        service.confs[ACCOUNT_CONF].list()
    # The kept-alive connection was cut too: nothing is served while splunkd is away.
    with pytest.raises(requests.exceptions.ConnectionError):
        checkpointer.get("obj")
    plain_splunkd.resume()

    assert plain_splunkd.port == port
    assert checkpointer.get("obj") == {"offset": 7}
    assert [stanza.name for stanza in service.confs[ACCOUNT_CONF].list()] == ["acct1", "acct2"]


def test_pause_and_resume_over_tls(splunkd: SplunkdEmulator) -> None:
    service = _service(splunkd)

    splunkd.pause()
    with pytest.raises(ConnectionRefusedError):
        service.confs[ACCOUNT_CONF].list()
    splunkd.resume()

    assert _conf_manager(splunkd, ACCOUNT_CONF).get_conf(ACCOUNT_CONF).get("acct1")["aws_secret_access_key"] == SECRET


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_serves_over_https_and_plain_http(tls: bool) -> None:
    with SplunkdEmulator(copy.deepcopy(SEED), tls=tls) as emulator:
        checkpointer = _checkpointer(emulator)
        checkpointer.update("obj", {"offset": 1})

        assert emulator.server_uri == f"{'https' if tls else 'http'}://127.0.0.1:{emulator.port}"
        assert checkpointer.get("obj") == {"offset": 1}
        assert _conf_manager(emulator, ACCOUNT_CONF).get_conf(ACCOUNT_CONF).get("acct1")["aws_secret_access_key"] == (
            SECRET
        )
        assert emulator.internal_errors == []
