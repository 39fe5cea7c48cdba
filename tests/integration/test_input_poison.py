"""Poison messages are given up after `max_receive_count` receives, never retried forever; access problems are
explained with the permission and the resource."""

import random
from datetime import datetime, timezone

from environment import input_params
from expectations import error_lines, wait_for

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records
from harness.proxies import FaultInjectingProxy, Rule, s3_error

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RNG = random.Random(77)


def test_a_poison_message_goes_to_the_dead_letter_queue_after_max_receive_count(moto, aws, start_input):
    queue = aws.create_queue(max_receive_count=3)
    body = "this is not JSON at all <script>alert(1)</script>" + "x" * 500
    sent = aws.send_raw(queue, body)
    running = start_input("poison_dlq", input_params(moto, queue, max_receive_count=3))
    # SQS moves the message on the receive after the 3rd: then the DLQ has it and the queue is empty
    wait_for(lambda: aws.queue_counts(queue.dlq).visible == 1, 90, "the message to reach the DLQ")
    assert running.terminate() == 0
    [dead] = aws.drain(queue.dlq)
    assert dead["MessageId"] == sent.message_id and dead["Body"] == body
    assert aws.queue_counts(queue).visible + aws.queue_counts(queue).not_visible == 0
    log = running.log_text()
    failures = [line for line in log.splitlines() if sent.message_id in line and "log_level=WARNING" in line]
    assert len(failures) == 2  # receives 1 and 2; the 3rd gives up
    assert (
        "not a notification this input understands" in failures[0]
        and "Body starts with: this is not JSON" in failures[0]
    )
    [given_up] = error_lines(log)
    assert sent.message_id in given_up and "given up after 3 receives" in given_up
    assert "left for the dead-letter queue" in given_up and queue.dlq.arn in given_up
    assert "x" * 151 + "…" in given_up and "x" * 152 not in given_up  # the first 200 characters of the body


def test_without_a_dead_letter_queue_a_poison_message_is_deleted_with_an_error(moto, aws, start_input):
    queue = aws.create_queue(dlq=False)
    sent = aws.send_raw(queue, '{"Records": "not a list"}')
    running = start_input("poison_delete", input_params(moto, queue, require_dlq=0, max_receive_count=2))
    aws.wait_until_drained(queue, 60)
    assert running.terminate() == 0
    [given_up] = error_lines(running.log_text())
    assert sent.message_id in given_up and "DELETED because the queue has no dead-letter queue" in given_up
    assert '{"Records": "not a list"}' in given_up


def test_missing_objects_and_access_problems_say_what_to_do(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue(max_receive_count=2)
    missing = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), make_records(3, seed=1))
    aws.s3.delete_object(Bucket=bucket, Key=missing.key)
    denied = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), make_records(3, seed=2))
    kms = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), make_records(3, seed=3))
    principal = "arn:aws:sts::123456789012:assumed-role/SplunkReader/splunk"
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with FaultInjectingProxy(moto.endpoint_url) as wire:
        wire.add_rule(
            Rule(
                match=lambda r: r.method == "GET" and denied.key.split("/")[-1] in r.path,
                status=403,
                body=s3_error("AccessDenied", f"User: {principal} is not authorized to perform: s3:GetObject"),
            )
        )
        wire.add_rule(
            Rule(
                match=lambda r: r.method == "GET" and kms.key.split("/")[-1] in r.path,
                status=403,
                body=s3_error(
                    "AccessDenied",
                    f"User: {principal} is not authorized to perform: kms:Decrypt on resource: {key_arn}",
                ),
            )
        )
        for info in (missing, denied, kms):
            aws.send_s3_event(queue, [info])
        running = start_input("access", input_params(moto, queue, s3_endpoint_url=wire.url, max_receive_count=2))
        wait_for(lambda: aws.queue_counts(queue.dlq).visible == 3, 120, "the three messages to reach the DLQ")
        assert running.terminate() == 0
    log = running.log_text()
    assert running.event_count == 0
    assert f"reading s3://{bucket}/{missing.key} failed: the object does not exist (NoSuchKey" in log
    assert (
        f"allow s3:GetObject (and s3:GetObjectVersion for versioned buckets) on arn:aws:s3:::{bucket}/{denied.key}"
        in log
    )
    assert f"for {principal}" in log
    assert f"KMS access denied; allow kms:Decrypt on {key_arn} for {principal}" in log
    assert len(error_lines(log)) == 3  # one give-up line per message, nothing looping
