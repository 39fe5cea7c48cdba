"""The built aws_cloudtrail_sqs input, run as splunkd runs it, against moto and the splunkd emulator."""

import random
import time
from datetime import datetime, timezone

import pytest
from conftest import ACCESS_KEY_ID, input_params
from expectations import assert_exact_events, error_lines, fixture_records, stratus_records

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RNG = random.Random(20261123)


def key(kind="log", **kwargs):
    return cloudtrail_key(kind, when=NOW, rng=RNG, **kwargs)


def wait_drained(aws, queue, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = aws.queue_counts(queue)
        if counts.visible == 0 and counts.not_visible == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"queue not drained: {aws.queue_counts(queue)}")


def stop_cleanly(running):
    assert running.terminate(timeout=30) == 0, running.describe()
    assert running.stream_complete and not running.protocol_errors
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
    wait_drained(aws, queue)
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
    wait_drained(aws, queue)
    time.sleep(0.5)  # nothing more may come
    stop_cleanly(running)

    assert_exact_events(running.events, {f"s3://{bucket}/{k}": r for k, r in objects.items()})
    assert aws.queue_counts(queue.dlq).visible == 0
    log = running.log_text()
    if shape == "s3":
        assert "s3:TestEvent" in log
