"""ProgressLedger semantics (batching, backlog bound, outage) over a store kept in memory.

The KV store itself is exercised through splunklib against the splunkd emulator in
tests/integration/test_checkpoints_kvstore.py.
"""

import logging
import threading
import time

from ta_aws_cloudtrail.checkpoints import KvStoreError, ObjectProgress, ProgressLedger, progress_key


class MemoryStore:
    def __init__(self):
        self.docs = {}
        self.saves = []
        self.fetches = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def fetch(self, key_ids):
        if self.fail:
            raise KvStoreError("KV store lookup failed: HTTP 503")
        self.fetches.append(list(key_ids))
        return {k: ObjectProgress.from_document(self.docs[k]) for k in key_ids if k in self.docs}

    def save(self, progress):
        self.gate.wait(5)
        if self.fail:
            raise KvStoreError("KV store save failed: HTTP 503")
        self.saves.append([p.key_id for p in progress])
        for p in progress:
            self.docs[p.key_id] = p.document()


def progress(key, records, done=False):
    return ObjectProgress(progress_key("b", key), "b", key, "v1", records, done, "in1")


def make_ledger(store, **kwargs):
    ledger = ProgressLedger(store, logging.getLogger("test"), coalesce_seconds=0.01, retry_interval=0.05, **kwargs)
    ledger.start()
    return ledger


def test_progress_key_depends_on_bucket_and_key():
    keys = {progress_key("b", "k"), progress_key("c", "k"), progress_key("b", "kk"), progress_key("b", "k\0")}
    assert len(keys) == 4 and all(len(k) == 40 for k in keys)
    assert progress_key("b", "k") == progress_key("b", "k")


def test_reports_are_saved_and_waiters_released():
    store = MemoryStore()
    ledger = make_ledger(store)
    seq = ledger.report(progress("a", 500), 500)
    assert ledger.wait_saved(seq, timeout=2)
    seq = ledger.report(progress("a", 1000, done=True), 500)
    assert ledger.wait_saved(seq, timeout=2)
    saved = store.fetch([progress_key("b", "a")])[progress_key("b", "a")]
    assert saved.records_done == 1000 and saved.done and saved.input == "in1" and saved.updated > 0
    assert ledger.unsaved_records == 0
    assert ledger.stop()


def test_reports_made_while_a_save_is_in_flight_are_batched_together():
    store = MemoryStore()
    ledger = make_ledger(store)
    store.gate.clear()  # hold the first save
    first = ledger.report(progress("a", 10), 10)
    time.sleep(0.05)
    for name in "bcd":
        ledger.report(progress(name, 10), 10)
    store.gate.set()
    assert ledger.wait_saved(first + 3, timeout=2)
    assert len(store.saves) == 2 and sorted(len(s) for s in store.saves) == [1, 3]
    ledger.stop()


def test_writers_wait_while_the_unsaved_backlog_is_above_the_bound():
    store = MemoryStore()
    ledger = make_ledger(store, max_unsaved_records=100)
    store.gate.clear()
    ledger.report(progress("a", 100), 100)  # at the bound: does not block
    blocked = threading.Event()
    released = threading.Event()

    def writer():
        blocked.set()
        ledger.report(progress("b", 50), 50)
        released.set()

    threading.Thread(target=writer, daemon=True).start()
    blocked.wait(1)
    assert not released.wait(0.2), "a writer above the bound must wait for the save"
    store.gate.set()
    assert released.wait(2)
    ledger.stop()


def test_outage_lets_ingestion_continue_and_saves_everything_on_recovery(caplog):
    store = MemoryStore()
    ledger = make_ledger(store, max_unsaved_records=10)
    store.fail = True
    with caplog.at_level(logging.INFO, logger="test"):
        seq = 0
        for i in range(5):
            seq = ledger.report(progress("a", (i + 1) * 100), 100)  # far above the bound: must not block
        assert not ledger.wait_saved(seq, timeout=2)  # returns at once: KV store is out
        assert ledger.outage and ledger.lookup(progress_key("b", "new")) is None
        time.sleep(0.2)  # several failed retries
        store.fail = False
        deadline = time.monotonic() + 2
        while ledger.outage and time.monotonic() < deadline:
            time.sleep(0.02)
    assert not ledger.outage
    assert store.docs[progress_key("b", "a")]["records_done"] == 500
    assert ledger.unsaved_records == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "KV store unavailable" in warnings[0].getMessage()
    assert any("available again" in r.getMessage() for r in caplog.records)
    ledger.stop()


def test_stop_saves_what_is_pending():
    store = MemoryStore()
    ledger = ProgressLedger(store, logging.getLogger("test"), coalesce_seconds=10)
    ledger.start()
    ledger.report(progress("a", 7), 7)
    assert ledger.stop(timeout=1)
    assert store.docs[progress_key("b", "a")]["records_done"] == 7


def test_lookup_prefers_progress_not_yet_saved():
    store = MemoryStore()
    ledger = ProgressLedger(store, logging.getLogger("test"), coalesce_seconds=10)
    ledger.start()
    ledger.report(progress("a", 3), 3)
    assert ledger.lookup(progress_key("b", "a")).records_done == 3
    ledger.stop(timeout=1)


def test_prefetched_progress_is_served_without_another_call():
    store = MemoryStore()
    store.docs[progress_key("b", "done")] = progress("done", 10, done=True).document()
    ledger = ProgressLedger(store, logging.getLogger("test"))
    ledger.prefetch([progress_key("b", "done"), progress_key("b", "new")])
    assert ledger.lookup(progress_key("b", "done")).done and ledger.lookup(progress_key("b", "new")) is None
    assert store.fetches == [[progress_key("b", "done"), progress_key("b", "new")]]
    ledger.lookup(progress_key("b", "new"))  # served once: a second lookup asks the store again
    assert len(store.fetches) == 2
