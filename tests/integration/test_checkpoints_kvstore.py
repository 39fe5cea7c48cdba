"""Progress in the KV store through solnlib/splunklib, against the splunkd emulator over HTTPS."""

import logging
import time

import pytest

from harness.splunkd import SplunkdEmulator
from ta_aws_cloudtrail.checkpoints import (
    COLLECTION,
    KvStoreError,
    ObjectProgress,
    ProgressLedger,
    ProgressStore,
    progress_key,
)
from ta_aws_cloudtrail.settings import SplunkdConnection


@pytest.fixture
def splunkd():
    with SplunkdEmulator(tls=True) as emulator:
        yield emulator


def connection(splunkd):
    return SplunkdConnection.from_server_uri(splunkd.server_uri, splunkd.session_key)


def progress(key, records, done, input_name="in1"):
    return ObjectProgress(progress_key("bucket", key), "bucket", key, "etag1", records, done, input_name, time.time())


def test_collection_is_created_with_its_fields_once(splunkd):
    store = ProgressStore(connection(splunkd))
    store.ensure_collection()
    store.ensure_collection()
    assert COLLECTION in splunkd.kv_collections()
    assert splunkd.count_requests("POST", "storage/collections/config") == 1


def test_save_fetch_purge_and_delete_by_input(splunkd):
    store = ProgressStore(connection(splunkd))
    store.ensure_collection()
    old = progress("AWSLogs/old.json.gz", 10, True)
    old.updated = time.time() - 30 * 86400
    store.save([progress("AWSLogs/a b+c.json.gz", 500, False), old, progress("other.json.gz", 3, True, "in2")])
    wanted = [progress_key("bucket", "AWSLogs/a b+c.json.gz"), progress_key("bucket", "other.json.gz")]
    found_all = store.fetch([*wanted, progress_key("bucket", "missing")])
    assert set(found_all) == set(wanted)  # one query, missing keys absent
    found = found_all[wanted[0]]
    assert (found.records_done, found.done, found.object_key, found.input) == (
        500,
        False,
        "AWSLogs/a b+c.json.gz",
        "in1",
    )
    assert store.fetch([progress_key("bucket", "missing")]) == {}

    store.purge("in1", time.time() - 14 * 86400)
    keys = {d["object_key"] for d in splunkd.kv_documents(COLLECTION)}
    assert keys == {"AWSLogs/a b+c.json.gz", "other.json.gz"}

    store.delete_input("in1")
    assert [d["input"] for d in splunkd.kv_documents(COLLECTION)] == ["in2"]


def test_batches_above_the_kv_limit_are_split(splunkd):
    store = ProgressStore(connection(splunkd))
    store.ensure_collection()
    store.save([progress(f"k{i}", i, True) for i in range(2500)])
    assert len(splunkd.kv_documents(COLLECTION)) == 2500
    assert splunkd.count_requests("POST", "batch_save") == 3


def test_outage_is_reported_without_the_session_key(splunkd):
    store = ProgressStore(connection(splunkd))
    store.ensure_collection()
    splunkd.set_kv_outage(503)
    with pytest.raises(KvStoreError) as err:
        store.save([progress("k", 1, True)])
    assert "503" in str(err.value) and splunkd.session_key not in str(err.value)
    splunkd.set_kv_outage(None)
    store.save([progress("k", 1, True)])
    assert len(splunkd.kv_documents(COLLECTION)) == 1


def test_ledger_saves_in_few_calls_and_survives_splunkd_going_away(caplog):
    # plain HTTP: keeps solnlib's own HTTPS retry policy out of the timing
    with SplunkdEmulator(tls=False) as splunkd:
        store = ProgressStore(connection(splunkd))
        store.ensure_collection()
        ledger = ProgressLedger(store, logging.getLogger("ledger-test"), retry_interval=0.1)
        ledger.start()
        seq = 0
        for i in range(50):
            seq = ledger.report(progress(f"obj{i % 5}", (i + 1) * 100, False), 100)
        assert ledger.wait_saved(seq, timeout=5)
        saves = splunkd.count_requests("POST", "batch_save")
        assert 1 <= saves < 50, saves

        splunkd.pause()
        with caplog.at_level(logging.WARNING, logger="ledger-test"):
            seq = ledger.report(progress("late", 7, True), 7)
            assert not ledger.wait_saved(seq, timeout=5)
        assert ledger.outage
        splunkd.resume()
        deadline = time.monotonic() + 5
        while ledger.outage and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not ledger.outage
        assert ledger.stop()
        docs = {d["object_key"]: d for d in splunkd.kv_documents(COLLECTION)}
        assert docs["late"]["done"] is True and docs["obj4"]["records_done"] == 5000
        assert sum("KV store unavailable" in r.getMessage() for r in caplog.records) == 1
