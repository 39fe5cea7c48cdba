"""The built aws_cloudtrail_sqs input, run as splunkd runs it, against moto and the splunkd emulator."""

import json
import os
import random
import re
import time
from datetime import datetime, timezone

import pytest
from environment import ACCESS_KEY_ID, input_params
from expectations import FIXTURES, assert_exact_events, epoch_text, error_lines, fixture_records, stratus_records

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RNG = random.Random(20261123)


def key(kind="log", **kwargs):
    return cloudtrail_key(kind, when=NOW, rng=RNG, **kwargs)


def stop_cleanly(running):
    assert running.terminate(timeout=30) == 0, running.describe()
    # splunklib opens <stream> with the first event only
    assert (running.stream_complete or running.event_count == 0) and not running.protocol_errors
    assert not error_lines(running.log_text()), error_lines(running.log_text())


def test_scheme_declares_the_input_parameters(runner):
    scheme = runner.scheme()
    assert scheme.findtext("title") == "aws_cloudtrail_sqs"
    assert scheme.findtext("use_external_validation") == "true"
    names = {arg.get("name") for arg in scheme.iter("arg")}
    assert {"account", "sqs_queue_url", "aws_iam_role", "require_dlq", "max_receive_count"} <= names


def test_first_run_reads_the_decrypted_account_uses_its_kv_collection_and_stops_on_sigterm(
    moto, aws, splunkd, start_input
):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    records = make_records(120, seed=1)
    obj = aws.put_cloudtrail_object(bucket, key(), records)
    aws.send_s3_event(queue, [obj])

    running = start_input("first", input_params(moto, queue))
    running.wait_for_events(120, timeout=30)
    aws.wait_until_drained(queue, 30)
    stop_cleanly(running)

    assert_exact_events(running.events, {obj.source: records}, stanza="aws_cloudtrail_sqs://first")
    # the secret came from storage/passwords under UCC's realm, the collection was created and written
    assert splunkd.count_requests("GET", "storage/passwords") >= 1
    assert splunkd.count_requests("POST", "storage/collections/config") == 1
    assert splunkd.count_requests("POST", "batch_save") >= 1
    [progress] = splunkd.kv_documents("ta_aws_cloudtrail_progress")
    assert progress["records_done"] == 120 and progress["done"] is True and progress["input"] == "first"
    assert ACCESS_KEY_ID not in running.stderr_text()
    assert "action=ended" in running.log_text()


SHAPES = ["s3", "sns", "sns_raw", "cloudtrail_sns", "eventbridge"]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_notification_shape_yields_each_record_exactly_once(shape, moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    topic = None
    if shape == "s3":
        aws.configure_bucket_notifications(bucket, queue=queue)  # moto sends the s3:TestEvent too
    elif shape in ("sns", "sns_raw", "cloudtrail_sns"):
        topic = aws.create_topic()
        aws.subscribe_queue(topic, queue, raw=shape == "sns_raw")
        if shape != "cloudtrail_sns":
            aws.configure_bucket_notifications(bucket, topic_arn=topic)
    else:
        aws.configure_bucket_notifications(bucket, eventbridge=True)
        aws.route_eventbridge_to_queue(queue, bucket=bucket)

    objects = {
        key(): stratus_records(),  # real records, pretty-printed arrays in the fixtures
        key(organization_id="o-a1b2c3d4e5"): make_records(300, seed=2),
        "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/23/spaced name+plus/ünï 日本.json.gz": make_records(
            40, seed=3, first_index=300
        ),
        # an Insights file (real Start/End pair from the CloudTrail user guide)
        key(kind="insight"): fixture_records("aws-cloudtrail-user-guide/cloudtrail-log-file-examples.example-07.json"),
    }
    infos = [aws.put_cloudtrail_object(bucket, k, records) for k, records in objects.items()]
    if shape == "cloudtrail_sns":
        aws.publish_cloudtrail_notification(topic, bucket, [i.key for i in infos])

    running = start_input(f"shape_{shape}", input_params(moto, queue))
    total = sum(len(r) for r in objects.values())
    running.wait_for_events(total, timeout=60)
    aws.wait_until_drained(queue, 30)
    time.sleep(0.5)  # nothing more may come
    stop_cleanly(running)

    assert_exact_events(running.events, {f"s3://{bucket}/{k}": r for k, r in objects.items()})
    assert aws.queue_counts(queue.dlq).visible == 0
    log = running.log_text()
    if shape == "s3":
        assert "s3:TestEvent" in log


def test_test_events_and_non_create_notifications_are_deleted_without_errors(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    obj = aws.put_cloudtrail_object(bucket, key(), make_records(3, seed=5))
    aws.send_s3_test_event(queue, bucket)
    aws.send_s3_event(queue, [obj], event_name="ObjectRemoved:Delete")
    aws.send_raw(queue, '{"version":"0","detail-type":"Object Deleted","source":"aws.s3","detail":{}}')

    running = start_input("quiet", input_params(moto, queue))
    aws.wait_until_drained(queue, 30)
    time.sleep(0.5)
    stop_cleanly(running)
    assert running.event_count == 0
    log = running.log_text()
    assert "is the s3:TestEvent" in log and "log_level=WARNING" not in log
    assert aws.queue_counts(queue.dlq).visible == 0


def test_digests_are_skipped_by_default_and_ingested_when_asked(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    digest_path = (
        "cloudtrail/aws-cloudtrail-user-guide/cloudtrail-log-file-validation-digest-file-structure.example-01.json"
    )
    with open(os.path.join(FIXTURES, digest_path), "rb") as f:
        digest_bytes = f.read()
    log_records = make_records(10, seed=6)
    digest_obj = aws.put_cloudtrail_object(bucket, key("digest"), digest_bytes)
    log_obj = aws.put_cloudtrail_object(bucket, key(), log_records)
    other = aws.put_cloudtrail_object(bucket, "elb/AWSLogs/123456789012/elasticloadbalancing/x.log.gz", b"x")
    aws.send_s3_event(queue, [digest_obj, log_obj, other])

    running = start_input("digests_off", input_params(moto, queue))
    running.wait_for_events(10, timeout=30)
    aws.wait_until_drained(queue, 30)
    time.sleep(0.5)
    stop_cleanly(running)
    assert_exact_events(running.events, {log_obj.source: log_records})
    assert "objects_skipped_digest=1" in running.log_text() and "objects_skipped_other=1" in running.log_text()

    aws.send_s3_event(queue, [digest_obj])
    running = start_input("digests_on", input_params(moto, queue, ingest_digest_files=1))
    [event] = running.wait_for_events(1, timeout=30)
    aws.wait_until_drained(queue, 30)
    stop_cleanly(running)
    assert event.sourcetype == "aws:cloudtrail:digest" and event.source == digest_obj.source
    assert json.loads(event.data) == json.loads(digest_bytes)
    assert event.time == epoch_text(json.loads(digest_bytes)["digestEndTime"])


def test_a_redelivered_message_yields_no_new_events(moto, aws, splunkd, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    records = make_records(700, seed=7)
    obj = aws.put_cloudtrail_object(bucket, key(), records)
    first = aws.send_s3_event(queue, [obj])

    running = start_input("redelivery", input_params(moto, queue))
    running.wait_for_events(700, timeout=30)
    aws.wait_until_drained(queue, 30)
    # the same notification again, and the same object announced in another shape (no ETag in it)
    aws.send_raw(queue, first.payload)
    topic = aws.create_topic()
    aws.subscribe_queue(topic, queue)
    aws.publish_cloudtrail_notification(topic, bucket, [obj.key])
    aws.wait_until_drained(queue, 30)
    time.sleep(0.5)
    stop_cleanly(running)
    assert running.event_count == 700
    assert running.log_text().count("already ingested") == 2
    assert_exact_events(running.events, {obj.source: records})


def test_filters_drop_exactly_the_matching_records(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    records = make_records(400, seed=8)
    obj = aws.put_cloudtrail_object(bucket, key(), records)
    aws.send_s3_event(queue, [obj])
    params = input_params(
        moto,
        queue,
        exclude_event_names="^(Describe|List)",
        exclude_read_only=0,
        exclude_event_sources="kms.amazonaws.com",
    )
    kept = [
        r
        for r in records
        if not re.search("^(Describe|List)", r["eventName"]) and r["eventSource"] != "kms.amazonaws.com"
    ]
    assert 0 < len(kept) < len(records)
    running = start_input("filters", params)
    running.wait_for_events(len(kept), timeout=30)
    aws.wait_until_drained(queue, 30)
    time.sleep(0.5)
    stop_cleanly(running)
    assert_exact_events(running.events, {obj.source: kept})
    assert f"records_filtered={len(records) - len(kept)}" in running.log_text()

    # read-only events only
    aws.send_s3_event(queue, [aws.put_cloudtrail_object(bucket, key(), records)])
    running = start_input("read_only", input_params(moto, queue, exclude_read_only=1))
    writes = [r for r in records if not r["readOnly"]]
    running.wait_for_events(len(writes), timeout=30)
    aws.wait_until_drained(queue, 30)
    time.sleep(0.5)
    stop_cleanly(running)
    assert sorted(json.loads(e.data)["eventID"] for e in running.events) == sorted(r["eventID"] for r in writes)


def test_unrecoverable_configuration_errors_exit_non_zero_with_one_clear_line(moto, aws, splunkd, runner):
    queue_without_dlq = aws.create_queue(dlq=False)
    running = runner.start("no_dlq", input_params(moto, queue_without_dlq), splunkd)
    assert running.wait(timeout=30) == 2
    stderr = running.stderr_text()
    assert "no dead-letter queue" in stderr and "set-queue-attributes" in stderr and "RedrivePolicy" in stderr
    assert "Traceback" not in stderr

    running = runner.start("no_account", dict(input_params(moto, aws.create_queue()), account="ghost"), splunkd)
    assert running.wait(timeout=30) == 2
    assert "AWS account 'ghost' does not exist" in running.stderr_text()
    assert "AWS account 'ghost' does not exist" in running.log_text()


def test_validation_accepts_good_settings_and_explains_bad_ones(moto, aws, splunkd, runner):
    queue = aws.create_queue()
    good = input_params(moto, queue)
    assert runner.validate("ok", good, splunkd).returncode == 0

    no_dlq = runner.validate("no_dlq", input_params(moto, aws.create_queue(dlq=False)), splunkd)
    assert no_dlq.returncode == 1 and "dead-letter queue" in no_dlq.message

    missing_queue = dict(good, sqs_queue_url=queue.url + "-nope")
    result = runner.validate("missing", missing_queue, splunkd)
    assert result.returncode == 1 and "does not exist" in result.message

    bad = dict(good, sqs_queue_url="sqs://wrong", sqs_batch_size="50")
    result = runner.validate("bad", bad, splunkd)
    assert result.returncode == 1
    assert "sqs_queue_url" in result.message and "sqs_batch_size" in result.message
