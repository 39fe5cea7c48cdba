"""Exactly once under concurrency and partial failure: an object announced by several messages at once is read
once (in one input and across inputs of one splunkd), and every object of a multi-object message is attempted."""

import random
import time
from datetime import datetime, timezone

import pytest
from environment import input_params
from expectations import assert_exact_events, error_lines, wait_for

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records
from harness.proxies import FaultInjectingProxy, Rule
from ta_aws_cloudtrail.checkpoints import ObjectProgress, ProgressStore, progress_key
from ta_aws_cloudtrail.settings import SplunkdConnection

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
RNG = random.Random(1616)


def announce_four_times(aws, queue, topic, bucket, objects):
    """Two S3 event notifications and two CloudTrail-SNS notifications for the same objects, sent together."""
    for _ in range(2):
        aws.send_s3_event(queue, objects)
        aws.publish_cloudtrail_notification(topic, bucket, [obj.key for obj in objects])


def test_an_object_announced_by_four_messages_at_once_is_ingested_once(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    topic = aws.create_topic()
    aws.subscribe_queue(topic, queue)
    records = make_records(1500, seed=16)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), records)
    announce_four_times(aws, queue, topic, bucket, [obj])
    wait_for(lambda: aws.queue_counts(queue).visible == 4, 30, "the four announcements to be queued")

    running = start_input("four_at_once", input_params(moto, queue))
    running.wait_for_events(1500, timeout=60)
    aws.wait_until_drained(queue, 60)
    assert running.terminate() == 0, running.describe()
    assert_exact_events(running.events, {obj.source: records})
    log = running.log_text()
    assert log.count(f"Ingested {obj.source}") == 1, log
    assert not error_lines(log)


@pytest.mark.parametrize("kv_save_delay", [0.0, 0.3], ids=["kv_prompt", "kv_slow_saves"])
def test_two_inputs_on_one_queue_read_each_announced_object_once(moto, aws, splunkd, start_input, kv_save_delay):
    # slow saves: found by CI, where an input read an object a second time while its "done" was being saved
    splunkd.set_kv_save_delay(kv_save_delay)
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    topic = aws.create_topic()
    aws.subscribe_queue(topic, queue)
    params = input_params(moto, queue)
    first = start_input("shared_a", params)
    second = start_input("shared_b", params)
    for running in (first, second):
        running.wait_until(lambda r=running: "action=started" in r.log_text(), timeout=30)

    expected = {}
    for i in range(6):
        records = make_records(800, seed=100 + i)
        obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), records)
        expected[obj.source] = records
        announce_four_times(aws, queue, topic, bucket, [obj])

    total = sum(len(r) for r in expected.values())
    wait_for(lambda: len(first.events) + len(second.events) >= total, 90, f"{total} events from the two inputs")
    aws.wait_until_drained(queue, 90)
    assert first.terminate() == 0 and second.terminate() == 0
    assert_exact_events(first.events + second.events, expected)
    for running in (first, second):
        assert not error_lines(running.log_text())
    progress = splunkd.kv_documents("ta_aws_cloudtrail_progress")
    assert len(progress) == 6 and all(doc["done"] is True for doc in progress)


def test_a_missing_object_does_not_stop_the_other_objects_of_its_message(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue(max_receive_count=3)
    topic = aws.create_topic()
    aws.subscribe_queue(topic, queue)
    objects, expected = [], {}
    for i in range(6):
        records = make_records(40, seed=200 + i)
        obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), records)
        objects.append(obj)
        expected[obj.source] = records
    missing = objects[3]
    aws.s3.delete_object(Bucket=bucket, Key=missing.key)
    del expected[missing.source]
    sent = aws.publish_cloudtrail_notification(topic, bucket, [obj.key for obj in objects])

    running = start_input("partial", input_params(moto, queue, max_receive_count=3))
    # the five good files on the first receive
    running.wait_for_events(200, timeout=30)
    wait_for(lambda: aws.queue_counts(queue.dlq).visible == 1, 90, "the message to reach the DLQ")
    assert running.terminate() == 0
    assert_exact_events(running.events, expected)
    log = running.log_text()
    for obj in objects:
        if obj is not missing:
            assert log.count(f"Ingested {obj.source}") == 1, obj.source
    [given_up] = error_lines(log)
    assert "given up after 3 receives" in given_up and "left for the dead-letter queue" in given_up
    assert missing.source in given_up, given_up
    [dead] = aws.drain(queue.dlq)
    assert sent.message_id in dead["Body"]  # the SNS envelope of the notification sent


def slow_s3(moto, bucket, seconds, size):
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    proxy.add_rule(
        Rule(match=lambda r: r.method == "GET" and f"/{bucket}/" in r.path, bytes_per_second=max(size // seconds, 1))
    )
    return proxy


def test_two_inputs_reading_one_object_at_the_same_time_read_it_once(moto, aws, splunkd, start_input):
    # one input on the S3-notification queue, one on a queue fed by CloudTrail's SNS topic: both are told of the
    # same file at the same moment, and S3 is slow enough (~4 s per read) for their reads to overlap
    bucket = aws.create_bucket()
    s3_queue, sns_queue = aws.create_queue(), aws.create_queue()
    topic = aws.create_topic()
    aws.subscribe_queue(topic, sns_queue)
    records = make_records(3000, seed=1617)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), records)
    proxy = slow_s3(moto, bucket, 4, obj.size)
    try:
        inputs = [
            start_input(name, input_params(moto, queue, s3_endpoint_url=proxy.url))
            for name, queue in (("via_s3", s3_queue), ("via_sns", sns_queue))
        ]
        for running in inputs:
            running.wait_until(lambda r=running: "action=started" in r.log_text(), timeout=30)
        aws.send_s3_event(s3_queue, [obj])
        aws.publish_cloudtrail_notification(topic, bucket, [obj.key])
        wait_for(lambda: sum(len(r.events) for r in inputs) >= len(records), 60, "every record")
        aws.wait_until_drained(s3_queue, 60)
        aws.wait_until_drained(sns_queue, 60)
        assert all(running.terminate() == 0 for running in inputs)
    finally:
        proxy.stop()
    assert_exact_events(inputs[0].events + inputs[1].events, {obj.source: records}, stanza=None)
    log = inputs[0].log_text()  # both inputs' log files (one SPLUNK_HOME)
    assert log.count(f"Ingested {obj.source}") == 1
    assert log.count(f"{obj.source} is being read by") == 1 and log.count(f"Skipped {obj.source}") == 1
    assert log.count("objects_waited=1") == 1


def test_an_object_claimed_by_another_forwarder_process_is_read_once_its_claim_lapses(moto, aws, splunkd, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    records = make_records(50, seed=1618)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), records)
    store = ProgressStore(SplunkdConnection.from_server_uri(splunkd.server_uri, splunkd.session_key))
    store.ensure_collection()
    lapses_at = time.time() + 6
    # a reader on another host holds the object (it read 20 records, then went silent)
    held = ObjectProgress(progress_key(bucket, obj.key), bucket, obj.key, obj.etag, 20, False, "elsewhere")
    held.claim_token, held.claim_holder, held.claim_expires = "t0", "other-host:4242", lapses_at
    assert store.insert(held.document())

    running = start_input("lapse", input_params(moto, queue))
    aws.send_s3_event(queue, [obj])
    running.wait_for_events(30, timeout=30)
    assert time.time() >= lapses_at - 0.5, "read before the other reader's claim lapsed"
    aws.wait_until_drained(queue, 30)
    assert running.terminate() == 0
    assert_exact_events(running.events, {obj.source: records[20:]})  # resumed after the 20 records done
    assert f"{obj.source} is being read by other-host:4242; waiting" in running.log_text()
    [doc] = [d for d in splunkd.kv_documents("ta_aws_cloudtrail_progress") if d["_key"] == held.key_id]
    assert doc["done"] is True and doc["records_done"] == 50 and doc["claim_holder"] != "other-host:4242"
