"""Object claims (one reader per object across processes) in the KV store, against the splunkd emulator.

Two ObjectClaims with different holders stand for two input processes of one Splunk instance.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.splunkd import SplunkdEmulator
from ta_aws_cloudtrail.checkpoints import COLLECTION, ObjectProgress, ProgressLedger, ProgressStore, progress_key
from ta_aws_cloudtrail.claims import CLAIMED, DONE, STOPPED, ObjectClaims
from ta_aws_cloudtrail.settings import SplunkdConnection

NEVER = threading.Event()


@pytest.fixture
def splunkd():
    with SplunkdEmulator(tls=False) as emulator:
        yield emulator


class Reader:
    """One process's ledger and claims."""

    def __init__(self, splunkd, holder, *, saving=True, **kwargs):
        conn = SplunkdConnection.from_server_uri(splunkd.server_uri, splunkd.session_key)
        self.store = ProgressStore(conn)
        self.store.ensure_collection()
        self.ledger = ProgressLedger(self.store, logging.getLogger(holder), coalesce_seconds=0.01)
        if saving:  # without its saver thread, what the ledger is told stays unsaved, as during a KV outage
            self.ledger.start()
        self.claims = ObjectClaims(self.store, self.ledger, logging.getLogger(holder), holder=holder, **kwargs)

    def claim(self, key="k", version="v1", stop=NEVER):
        wanted = ObjectProgress(progress_key("b", key), "b", key, version, 0, False, "in")
        return self.claims.claim(wanted, stop)

    def finish(self, result, records, done):
        result.progress.records_done = records
        result.progress.done = done
        self.claims.release(result.progress)
        assert self.ledger.wait_saved(self.ledger.report(result.progress, 0), timeout=5)


def claim_in_background(reader, **kwargs):
    pool = ThreadPoolExecutor(1)
    return pool.submit(reader.claim, **kwargs)


def test_the_first_reader_claims_with_one_insert_and_a_second_waits_until_it_is_done(splunkd):
    a, b = Reader(splunkd, "hostA:1"), Reader(splunkd, "hostB:2", poll_seconds=0.05)
    first = a.claim()
    assert first.status == CLAIMED and first.resume_from == 0
    assert splunkd.count_requests("GET", f"collections/data/{COLLECTION}") == 0  # 201: nobody had progress
    waiting = claim_in_background(b)
    time.sleep(0.5)
    assert not waiting.done()
    a.finish(first, 120, done=True)
    assert waiting.result(timeout=5).status == DONE


def release_while_the_save_is_slow(splunkd, reader, records, done):
    """Finish the reader's claim with a batch save that the KV store holds back; returns once it is on its way."""
    splunkd.set_kv_save_delay(1.5)
    first = reader.claim()
    first.progress.records_done, first.progress.done = records, done
    reader.claims.release(first.progress)
    seq = reader.ledger.report(first.progress, records)
    deadline = time.monotonic() + 5
    while splunkd.kv_saves_delayed == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert splunkd.kv_saves_delayed == 1 and not reader.ledger.wait_saved(seq, timeout=0)
    splunkd.set_kv_save_delay(0)
    return seq


def test_an_object_this_process_finished_stays_done_here_while_its_progress_is_being_saved(splunkd):
    """Found by CI (one object of six indexed twice by two inputs on one queue): while the ledger's save of "done"
    was on its way, this process forgot the object's progress, and another message for it found the process's own
    claim still live in the KV store and read the object again from its start."""
    a = Reader(splunkd, "hostA:1")
    seq = release_while_the_save_is_slow(splunkd, a, 800, done=True)
    assert a.claim().status == DONE
    assert a.ledger.wait_saved(seq, timeout=5)
    [doc] = splunkd.kv_documents(COLLECTION)
    assert doc["done"] is True and doc["records_done"] == 800


def test_a_claim_taken_again_by_this_process_is_not_undone_by_its_slow_release(splunkd):
    """The release of an interrupted read, saved late, must not land over the claim this process took again
    meanwhile: another process would see the object released and read it beside this one."""
    a, b = Reader(splunkd, "hostA:1"), Reader(splunkd, "hostB:2", poll_seconds=0.05)
    release_while_the_save_is_slow(splunkd, a, 500, done=False)
    again = a.claim()
    assert again.status == CLAIMED and again.resume_from == 500
    time.sleep(1.5)  # the slow release has landed by now
    [doc] = splunkd.kv_documents(COLLECTION)
    assert doc["claim_token"] == again.progress.claim_token and doc["claim_expires"] > time.time()
    stopper = threading.Event()
    waiting = claim_in_background(b, stop=stopper)
    time.sleep(0.5)
    stopper.set()
    assert waiting.result(timeout=5).status == STOPPED  # it waited for hostA's claim


def test_an_unfinished_object_released_by_its_reader_is_resumed_by_the_next(splunkd):
    a, b = Reader(splunkd, "hostA:1"), Reader(splunkd, "hostB:2", poll_seconds=0.05)
    first = a.claim()
    waiting = claim_in_background(b)
    time.sleep(0.3)
    a.finish(first, 500, done=False)  # interrupted after 500 records
    second = waiting.result(timeout=5)
    assert second.status == CLAIMED and second.resume_from == 500
    [doc] = [d for d in splunkd.kv_documents(COLLECTION) if "~" not in d["_key"]]
    assert doc["claim_holder"] == "hostB:2" and doc["claim_expires"] > time.time()


def test_a_lapsed_claim_is_taken_over_by_exactly_one_of_several_readers(splunkd):
    crashed = Reader(splunkd, "hostA:1", lease_seconds=0.5)
    first = crashed.claim()
    first.progress.records_done = 300
    assert crashed.ledger.wait_saved(crashed.ledger.report(first.progress, 300), timeout=5)
    # three other processes see the claim, which lapses (no renewal: its holder "crashed")
    readers = [Reader(splunkd, f"host{i}:{i}", poll_seconds=0.05) for i in range(3)]
    start = threading.Barrier(3)

    def contend(reader):
        start.wait()
        return reader.claim(stop=stopper)

    stopper = threading.Event()
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(contend, r) for r in readers]
        time.sleep(2.0)
        stopper.set()  # the losers are still waiting for the winner: let them go
        results = [f.result(timeout=5) for f in futures]
    winners = [r for r in results if r.status == CLAIMED]
    assert len(winners) == 1 and winners[0].resume_from == 300
    assert sorted(r.status for r in results) == [CLAIMED, STOPPED, STOPPED]


def test_a_taker_killed_between_its_marker_and_its_claim_does_not_block_the_object(splunkd):
    """Found by the crash test: a process killed after inserting the takeover marker and before writing its claim
    left the object waited on for ever. The marker lapses after a lease; one of the next readers takes over."""
    crashed = Reader(splunkd, "hostA:1", lease_seconds=0.5)
    first = crashed.claim()
    first.progress.records_done = 300
    assert crashed.ledger.wait_saved(crashed.ledger.report(first.progress, 300), timeout=5)
    # the killed taker's marker, named after the lapsed claim as every taker names it
    marker = f"{first.progress.key_id}~{first.progress.claim_token}"
    assert crashed.store.insert({"_key": marker, "input": "in", "updated": time.time()})
    readers = [Reader(splunkd, f"host{i}:{i}", poll_seconds=0.05, lease_seconds=2.0) for i in range(2)]
    stopper = threading.Event()
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(r.claim, stop=stopper) for r in readers]
        winner = None
        while winner is None and time.monotonic() - started < 5:
            winner = next((f.result() for f in futures if f.done()), None)
            time.sleep(0.05)
        time.sleep(0.5)
        stopper.set()
        results = [f.result(timeout=5) for f in futures]
    assert sorted(r.status for r in results) == [CLAIMED, STOPPED]
    taken = next(r for r in results if r.status == CLAIMED)
    assert taken.resume_from == 300
    assert time.monotonic() - started < 5


def test_a_claim_of_a_process_gone_from_this_host_lapses_at_once(splunkd):
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_holder = f"{socket.gethostname()}:{int(dead.stdout)}"
    crashed = Reader(splunkd, dead_holder)  # a lease of a minute, never released
    assert crashed.claim().status == CLAIMED
    started = time.monotonic()
    assert Reader(splunkd, "other:1").claim().status == CLAIMED
    assert time.monotonic() - started < 2


def test_a_done_object_of_another_version_is_claimed_again(splunkd):
    a, b = Reader(splunkd, "hostA:1"), Reader(splunkd, "hostB:2")
    a.finish(a.claim(version="v1"), 10, done=True)
    assert b.claim(version="v1").status == DONE
    replaced = b.claim(version="v2")
    assert replaced.status == CLAIMED and replaced.resume_from == 0


def test_a_slow_reader_keeps_its_claim_alive(splunkd, monkeypatch):
    import ta_aws_cloudtrail.claims as claims_module

    monkeypatch.setattr(claims_module, "RENEW_EVERY_SECONDS", 0.1)
    a = Reader(splunkd, "hostA:1", lease_seconds=1.0)
    a.claims.start()
    first = a.claim()
    b = Reader(splunkd, "hostB:2", poll_seconds=0.05)
    stopper = threading.Event()
    waiting = claim_in_background(b, stop=stopper)
    time.sleep(3.0)  # three leases: without renewal b would have taken the object over
    assert not waiting.done()
    stopper.set()
    assert waiting.result(timeout=5).status == STOPPED
    a.claims.stop()
    a.finish(first, 1, done=True)


def test_while_the_kv_store_is_down_objects_are_read_unclaimed(splunkd):
    a = Reader(splunkd, "hostA:1")
    splunkd.set_kv_outage(503)
    result = a.claim()
    assert result.status == CLAIMED and a.ledger.outage
    splunkd.set_kv_outage(None)


def test_progress_this_process_could_not_save_is_resumed_from_when_it_claims_again(splunkd):
    a = Reader(splunkd, "hostA:1", saving=False)
    unsaved = ObjectProgress(progress_key("b", "k"), "b", "k", "v1", 700, False, "in")
    a.ledger.report(unsaved, 700)
    result = a.claim()
    assert result.status == CLAIMED and result.resume_from == 700
    [doc] = splunkd.kv_documents(COLLECTION)
    assert doc["records_done"] == 700 and doc["claim_holder"] == "hostA:1"
