"""SIGKILL in the middle of an object, and an object slower than the visibility timeout."""

import json
import random
import time
from collections import Counter
from datetime import datetime, timezone

from environment import ARTIFACTS, input_params, seed
from expectations import assert_exact_events

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records
from harness.proxies import FaultInjectingProxy, Rule, target_is
from harness.splunkd import SplunkdEmulator

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def slow_s3(moto, bucket, bytes_per_second):
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    proxy.add_rule(
        Rule(match=lambda r: r.method == "GET" and f"/{bucket}/" in r.path, bytes_per_second=bytes_per_second)
    )
    return proxy


def test_sigkill_mid_object_then_restart_loses_nothing_and_duplicates_only_unsaved_records(
    moto, aws, splunkd, start_input
):
    bucket = aws.create_bucket()
    queue = aws.create_queue(visibility_timeout=30)
    records = make_records(30000, seed=11)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(1)), records)
    aws.send_s3_event(queue, [obj])
    proxy = slow_s3(moto, bucket, bytes_per_second=max(obj.size // 8, 1))  # ~8 s to read the object
    try:
        params = input_params(moto, queue, s3_endpoint_url=proxy.url)
        first = start_input("crash", params)
        first.wait_for_events(8000, timeout=60)
        first.kill()
        before_kill = list(first.events)
        saved = [d for d in splunkd.kv_documents("ta_aws_cloudtrail_progress") if d["object_key"] == obj.key]
        saved_records = saved[0]["records_done"] if saved else 0
        assert not (saved and saved[0]["done"]), "the kill must land in the middle of the object"

        proxy.clear_rules()
        second = start_input("crash", params)  # the message comes back after its visibility timeout
        second.wait_for_events(len(records) - saved_records, timeout=90)
        deadline = time.monotonic() + 30
        while aws.queue_counts(queue).not_visible and time.monotonic() < deadline:
            time.sleep(0.2)
        assert second.terminate(timeout=30) == 0
    finally:
        proxy.stop()

    ids = Counter(json.loads(e.data)["eventID"] for e in before_kill + second.events)
    duplicates = sum(n - 1 for n in ids.values())
    assert set(ids) == {r["eventID"] for r in records}, "every record is indexed"
    # exactly the records written after the last saved progress come twice, and that is bounded
    assert duplicates == len(before_kill) - saved_records
    assert duplicates <= 10000 + 500
    print(
        f"\nSIGKILL after {len(before_kill)} events, progress saved at {saved_records}: "
        f"{duplicates} duplicates, 0 lost, {len(records)} records"
    )
    assert_exact_events(second.events, {obj.source: records[saved_records:]})


def test_an_object_slower_than_the_visibility_timeout_is_not_delivered_twice(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue(visibility_timeout=30)
    records = make_records(12000, seed=12)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(2)), records)
    aws.send_s3_event(queue, [obj])
    proxy = slow_s3(moto, bucket, bytes_per_second=max(obj.size // 45, 1))  # ~45 s > 30 s visibility
    try:
        # a second reader polls the same queue the whole time: a lapsed visibility would hand it the message
        params = input_params(moto, queue, s3_endpoint_url=proxy.url, sqs_endpoint_url=proxy.url)
        started = time.monotonic()
        reader = start_input("slow_a", params)
        reader.wait_for_events(1, timeout=60)
        other = start_input("slow_b", params)
        reader.wait_for_events(len(records), timeout=120)
        elapsed = time.monotonic() - started
        time.sleep(2)
        assert reader.terminate(timeout=30) == 0 and other.terminate(timeout=30) == 0
    finally:
        proxy.stop()
    assert elapsed > 30, f"the object must outlast the visibility timeout (took {elapsed:.0f} s)"
    assert other.event_count == 0
    assert_exact_events(reader.events, {obj.source: records})
    assert proxy.count(target_is("ChangeMessageVisibilityBatch")) >= 2
    assert aws.queue_counts(queue).visible == 0 and aws.queue_counts(queue.dlq).visible == 0


def test_two_forwarders_on_one_queue_after_a_kill_lose_nothing_and_the_other_rereads_the_file(
    moto, aws, splunkd, start_input
):
    """Separate Splunk instances share the queue, not the KV store: the README's "across forwarders" case."""
    bucket = aws.create_bucket()
    queue = aws.create_queue(visibility_timeout=30)
    records = make_records(20000, seed=13)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(3)), records)
    aws.send_s3_event(queue, [obj])
    proxy = slow_s3(moto, bucket, bytes_per_second=max(obj.size // 8, 1))
    try:
        params = input_params(moto, queue, s3_endpoint_url=proxy.url)
        first = start_input("forwarder_a", params)  # on the `splunkd` emulator
        first.wait_for_events(6000, timeout=60)
        first.kill()
        saved_by_first = [d for d in splunkd.kv_documents("ta_aws_cloudtrail_progress") if d.get("object_key")]
        assert saved_by_first and saved_by_first[0]["records_done"] > 0
        proxy.clear_rules()
        with SplunkdEmulator(seed()) as other_instance:  # another forwarder: its own KV store, no progress
            ARTIFACTS.secrets.append(other_instance.session_key)
            second = start_input("forwarder_b", params, splunkd_endpoint=other_instance)
            second.wait_for_events(len(records), timeout=120)  # after the message's visibility timeout
            aws.wait_until_drained(queue, 30)
            assert second.terminate(timeout=30) == 0
    finally:
        proxy.stop()
    ids = Counter(json.loads(e.data)["eventID"] for e in first.events + second.events)
    assert set(ids) == {r["eventID"] for r in records}, "lost 0"
    duplicates = sum(n - 1 for n in ids.values())
    # the other forwarder knows nothing of the first one's progress: everything the first wrote comes twice
    assert duplicates == len(first.events) and second.event_count == len(records)
    print(f"\ntwo forwarders: killed after {len(first.events)} events; lost 0, duplicates {duplicates}")
