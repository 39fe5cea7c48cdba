"""The AWS harness against a real moto server: resources, uploads, every notification shape, queue helpers.

Several assertions pin down moto behaviour the harness documents (what moto fills in, what it leaves out),
so a moto upgrade that changes it fails here rather than silently invalidating other tests.
"""

import base64
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List
from urllib.parse import unquote_plus

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from harness.aws import (
    ACCOUNT_ID,
    AwsTestEnv,
    MotoServer,
    ObjectInfo,
    QueueInfo,
    cloudtrail_key,
    eventbridge_object_event,
)
from harness.cloudtrail_data import make_records

WHEN = datetime(2024, 5, 1, 12, 5, 0, tzinfo=timezone.utc)
AWKWARD_KEY = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/with space+plus=eq.json.gz"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture()
def env(moto: MotoServer) -> AwsTestEnv:
    return AwsTestEnv(moto)


def _bodies(messages: List[Dict[str, Any]]) -> List[Any]:
    return [json.loads(message["Body"]) for message in messages]


def _verifies(envelope: Dict[str, Any], certificate_pem: bytes) -> bool:
    """SNS signature check as AWS specifies it (Subject signed when present)."""
    fields = ["Message", "MessageId"] + (["Subject"] if "Subject" in envelope else []) + ["Timestamp", "TopicArn"]
    string_to_sign = "".join(f"{name}\n{envelope[name]}\n" for name in [*fields, "Type"])
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    try:
        certificate.public_key().verify(
            base64.b64decode(envelope["Signature"]), string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


# -- server ---------------------------------------------------------------------------------------------------


def test_server_listens_on_loopback_and_gives_child_environment(moto: MotoServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", moto.endpoint_url)
    assert moto.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID
    child_env = moto.child_environment()
    assert child_env["AWS_ENDPOINT_URL"] == moto.endpoint_url
    assert child_env["AWS_DEFAULT_REGION"] == "us-east-1"


RESET_CHECK = """
from harness.aws import MotoServer
with MotoServer() as moto:
    sqs = moto.client("sqs")
    sqs.create_queue(QueueName="reset-probe")
    before = len(sqs.list_queues().get("QueueUrls", []))
    moto.reset()
    print(before, len(sqs.list_queues().get("QueueUrls", [])))
"""


def test_reset_drops_resources() -> None:
    # moto's state is process-wide: reset in a separate process so other tests' resources survive.
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", RESET_CHECK],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": tests_dir},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "0"]


# -- resources and uploads ------------------------------------------------------------------------------------


def test_upload_returns_etag_version_and_size(env: AwsTestEnv) -> None:
    versioned = env.create_bucket(versioning=True)
    plain = env.create_bucket()
    records = make_records(20, seed=1)
    key = cloudtrail_key(when=WHEN)

    stored = env.put_cloudtrail_object(versioned, key, records)
    head = env.s3.head_object(Bucket=versioned, Key=key)
    assert stored.version_id and stored.version_id == head["VersionId"]
    body = env.s3.get_object(Bucket=versioned, Key=key)["Body"].read()
    assert stored.etag == hashlib.md5(body).hexdigest() == head["ETag"].strip('"')
    assert stored.size == len(body) == head["ContentLength"]
    assert json.loads(gzip.decompress(body)) == {"Records": records}
    assert stored.source == f"s3://{versioned}/{key}"

    raw = env.put_cloudtrail_object(plain, "AWSLogs/junk.json", b"\x1f\x8b not really gzip", gzip=False)
    assert raw.version_id is None
    assert env.s3.get_object(Bucket=plain, Key=raw.key)["Body"].read() == b"\x1f\x8b not really gzip"
    later = env.put_cloudtrail_object(plain, "AWSLogs/junk2.json", b"{}", gzip=False)
    assert later.sequencer > raw.sequencer, "sequencers grow with write order"


def test_cloudtrail_key_layouts() -> None:
    rng = random.Random(1)
    log = cloudtrail_key(when=WHEN, rng=rng)
    assert re.fullmatch(
        r"AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/"
        r"123456789012_CloudTrail_us-east-1_20240501T1205Z_[A-Za-z0-9]{16}\.json\.gz",
        log,
    )
    assert cloudtrail_key(when=WHEN, rng=random.Random(1)) == log
    org = cloudtrail_key(when=WHEN, organization_id="o-a1b2c3d4e5", account="210987654321", region="eu-west-1")
    assert org.startswith("AWSLogs/o-a1b2c3d4e5/210987654321/CloudTrail/eu-west-1/2024/05/01/210987654321_CloudTrail_")
    insight = cloudtrail_key("insight", when=WHEN, prefix="trails/prod/")
    assert re.fullmatch(
        r"trails/prod/AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2024/05/01/"
        r"123456789012_CloudTrail-Insight_us-east-1_20240501T1205Z_\w{16}\.json\.gz",
        insight,
    )
    digest = cloudtrail_key("digest", when=WHEN, trail_name="org-trail")
    assert digest == (
        "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/05/01/"
        "123456789012_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20240501T120500Z.json.gz"
    )
    with pytest.raises(ValueError):
        cloudtrail_key("trail", when=WHEN)


def test_queue_with_and_without_dlq(env: AwsTestEnv) -> None:
    with_dlq = env.create_queue(max_receive_count=4, visibility_timeout=45)
    attributes = env.sqs.get_queue_attributes(QueueUrl=with_dlq.url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert with_dlq.dlq is not None
    assert redrive["deadLetterTargetArn"] == with_dlq.dlq.arn
    assert int(redrive["maxReceiveCount"]) == 4

    without = env.create_queue(dlq=False)
    assert without.dlq is None
    attributes = env.sqs.get_queue_attributes(QueueUrl=without.url, AttributeNames=["All"])["Attributes"]
    assert "RedrivePolicy" not in attributes
    # The production-shaped URL names the same queue.
    assert without.aws_url == f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT_ID}/{without.name}"
    env.sqs.send_message(QueueUrl=without.aws_url, MessageBody="via aws url")
    assert [m["Body"] for m in env.drain(without)] == ["via aws url"]


def test_message_received_max_receive_count_times_ends_in_dlq(env: AwsTestEnv) -> None:
    queue = env.create_queue(max_receive_count=2, visibility_timeout=1)
    assert queue.dlq is not None
    sent = env.send_raw(queue, '{"poison": true}')
    for expected_count in ("1", "2"):
        (message,) = env.receive(queue)
        assert message["Attributes"]["ApproximateReceiveCount"] == expected_count
        assert env.queue_counts(queue).not_visible == 1
        time.sleep(1.2)
    # moto moves the message during the next receive, which therefore returns nothing.
    assert env.receive(queue) == []
    assert env.queue_counts(queue).visible == env.queue_counts(queue).not_visible == 0
    assert env.queue_counts(queue.dlq).visible == 1
    (dead,) = env.drain(queue.dlq)
    assert dead["MessageId"] == sent.message_id
    assert dead["Body"] == '{"poison": true}'
    assert env.queue_counts(queue.dlq).visible == 0


def test_queue_counts_follow_receive_and_visibility(env: AwsTestEnv) -> None:
    queue = env.create_queue(dlq=False, visibility_timeout=30)
    for n in range(3):
        env.send_raw(queue, f"m{n}")
    assert env.queue_counts(queue) == type(env.queue_counts(queue))(visible=3, not_visible=0, delayed=0)
    received = env.receive(queue, max_messages=2, visibility_timeout=1)
    assert len(received) == 2
    assert "SentTimestamp" in received[0]["Attributes"]
    counts = env.queue_counts(queue)
    assert (counts.visible, counts.not_visible) == (1, 2)
    time.sleep(1.2)
    assert env.queue_counts(queue).visible == 3
    env.purge(queue)
    assert env.queue_counts(queue).visible == 0


# -- S3 -> SQS ------------------------------------------------------------------------------------------------


def test_bucket_notification_to_queue_sends_test_event_then_object_events(env: AwsTestEnv) -> None:
    bucket = env.create_bucket()
    queue = env.create_queue()
    env.configure_bucket_notifications(
        bucket, queue=queue, events=("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), prefix="AWSLogs/"
    )
    (test_event,) = _bodies(env.drain(queue))
    assert test_event["Event"] == "s3:TestEvent" and test_event["Bucket"] == bucket
    assert "RequestId" not in test_event, "moto's test event lacks AWS's RequestId/HostId"

    stored = env.put_cloudtrail_object(bucket, AWKWARD_KEY, make_records(3, seed=2))
    env.put_cloudtrail_object(bucket, "outside-prefix/file.json.gz", make_records(1, seed=2))
    env.s3.delete_object(Bucket=bucket, Key=AWKWARD_KEY)
    created, removed = _bodies(env.drain(queue))

    (record,) = created["Records"]
    assert record["eventVersion"] == "2.1" and record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == bucket
    s3_object = record["s3"]["object"]
    assert s3_object["size"] == stored.size and s3_object["eTag"] == stored.etag
    # moto encodes '/' too; decoding recovers the key either way.
    assert s3_object["key"].startswith("AWSLogs%2F123456789012%2F")
    assert "with+space%2Bplus%3Deq" in s3_object["key"]
    assert unquote_plus(s3_object["key"]) == AWKWARD_KEY
    assert "sequencer" not in s3_object and "versionId" not in s3_object
    assert removed["Records"][0]["eventName"] == "ObjectRemoved:Delete"


def test_faithful_s3_event_body(env: AwsTestEnv) -> None:
    bucket = env.create_bucket(versioning=True)
    queue = env.create_queue()
    first = env.put_cloudtrail_object(bucket, AWKWARD_KEY, make_records(2, seed=3))
    second = env.put_cloudtrail_object(bucket, cloudtrail_key(when=WHEN), make_records(2, seed=4))
    sent = env.send_s3_event(queue, [first, second])
    env.send_s3_event(queue, [first], event_name="ObjectRemoved:Delete")
    env.send_s3_test_event(queue, bucket)
    created, removed, test_event = env.drain(queue)

    assert created["MessageId"] == sent.message_id and created["Body"] == sent.payload
    assert ", " not in created["Body"], "S3 sends compact JSON"
    records = json.loads(created["Body"])["Records"]
    assert [r["eventName"] for r in records] == ["ObjectCreated:Put", "ObjectCreated:Put"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", records[0]["eventTime"])
    assert {"userIdentity", "requestParameters", "responseElements"} <= set(records[0])
    s3_object = records[0]["s3"]["object"]
    assert s3_object["key"] == "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/with+space%2Bplus%3Deq.json.gz"
    assert unquote_plus(s3_object["key"]) == AWKWARD_KEY
    assert s3_object["versionId"] == first.version_id and s3_object["sequencer"] == first.sequencer
    assert (s3_object["size"], s3_object["eTag"]) == (first.size, first.etag)
    assert records[1]["s3"]["object"]["key"] == second.key
    assert records[0]["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"

    (removed_record,) = json.loads(removed["Body"])["Records"]
    assert removed_record["eventName"] == "ObjectRemoved:Delete"
    assert "size" not in removed_record["s3"]["object"] and "eTag" not in removed_record["s3"]["object"]

    test_body = json.loads(test_event["Body"])
    assert test_body["Event"] == "s3:TestEvent" and {"RequestId", "HostId", "Time"} <= set(test_body)


# -- SNS ------------------------------------------------------------------------------------------------------


def _sns_pair(env: AwsTestEnv) -> "tuple[str, QueueInfo, QueueInfo]":
    topic = env.create_topic()
    wrapped = env.create_queue()
    raw = env.create_queue()
    env.subscribe_queue(topic, wrapped)
    env.subscribe_queue(topic, raw, raw=True)
    return topic, wrapped, raw


def test_sns_wrapped_and_raw_delivery_of_s3_event(env: AwsTestEnv, moto: MotoServer) -> None:
    topic, wrapped, raw = _sns_pair(env)
    policy = json.loads(
        env.sqs.get_queue_attributes(QueueUrl=wrapped.url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    assert policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == topic
    stored = env.put_cloudtrail_object(env.create_bucket(), cloudtrail_key(when=WHEN), make_records(2, seed=5))

    sent = env.publish_s3_event(topic, [stored])
    (raw_message,) = env.drain(raw)
    assert raw_message["Body"] == sent.payload

    (wrapped_message,) = env.drain(wrapped)
    envelope = json.loads(wrapped_message["Body"])
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == sent.message_id
    assert envelope["TopicArn"] == topic
    assert envelope["Message"] == sent.payload
    assert envelope["Subject"] == "Amazon S3 Notification"
    assert envelope["SignatureVersion"] == "2"
    assert re.fullmatch(
        r"https://sns\.us-east-1\.amazonaws\.com/SimpleNotificationService-[0-9a-f]{32}\.pem",
        envelope["SigningCertURL"],
    )
    assert envelope["UnsubscribeURL"].startswith(
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", envelope["Timestamp"])
    assert wrapped_message["Body"].startswith('{\n  "Message": '), "moto pretty-prints with sorted keys"
    # moto signs without the Subject, so an AWS-correct check fails whenever a Subject is present.
    certificate = moto.fetch_sns_signing_certificate(envelope["SigningCertURL"])
    assert certificate.startswith(b"-----BEGIN CERTIFICATE-----")
    assert not _verifies(envelope, certificate)


def test_sns_envelope_without_subject_verifies_with_moto_certificate(env: AwsTestEnv, moto: MotoServer) -> None:
    topic, wrapped, raw = _sns_pair(env)
    stored = env.put_cloudtrail_object(env.create_bucket(), cloudtrail_key(when=WHEN), make_records(1, seed=6))
    env.publish_s3_event(topic, [stored], subject=None)
    (message,) = env.drain(wrapped)
    envelope = json.loads(message["Body"])
    assert "Subject" not in envelope
    certificate = moto.fetch_sns_signing_certificate(envelope["SigningCertURL"])
    assert _verifies(envelope, certificate)
    tampered = dict(envelope, Message=envelope["Message"].replace("ObjectCreated", "ObjectRemoved"))
    assert not _verifies(tampered, certificate)
    assert len(env.drain(raw)) == 1


def test_bucket_notification_through_sns_to_queue(env: AwsTestEnv) -> None:
    bucket = env.create_bucket()
    topic, wrapped, raw = _sns_pair(env)
    env.configure_bucket_notifications(bucket, topic_arn=topic)
    (test_event_envelope,) = _bodies(env.drain(wrapped))
    assert json.loads(test_event_envelope["Message"])["Event"] == "s3:TestEvent"
    assert json.loads(env.drain(raw)[0]["Body"])["Event"] == "s3:TestEvent"

    stored = env.put_cloudtrail_object(bucket, cloudtrail_key(when=WHEN), make_records(1, seed=7))
    (envelope,) = _bodies(env.drain(wrapped))
    assert "Subject" not in envelope, "moto's S3->SNS publish sets no Subject"
    (record,) = json.loads(envelope["Message"])["Records"]
    assert unquote_plus(record["s3"]["object"]["key"]) == stored.key
    (raw_body,) = _bodies(env.drain(raw))
    assert raw_body["Records"][0]["s3"]["object"]["eTag"] == stored.etag


def test_cloudtrail_sns_notification(env: AwsTestEnv) -> None:
    topic, wrapped, raw = _sns_pair(env)
    bucket = env.create_bucket()
    keys = [cloudtrail_key(when=WHEN) for _ in range(3)]
    sent = env.publish_cloudtrail_notification(topic, bucket, keys)
    assert sent.via == "sns"
    (envelope,) = _bodies(env.drain(wrapped))
    assert envelope["MessageId"] == sent.message_id
    assert json.loads(envelope["Message"]) == {"s3Bucket": bucket, "s3ObjectKey": keys}
    assert "Subject" not in envelope
    (raw_message,) = env.drain(raw)
    assert (
        raw_message["Body"]
        == sent.payload
        == json.dumps({"s3Bucket": bucket, "s3ObjectKey": keys}, separators=(",", ":"))
    )


# -- EventBridge ----------------------------------------------------------------------------------------------


def test_eventbridge_put_events_reaches_queue_through_rule(env: AwsTestEnv) -> None:
    bucket = env.create_bucket(versioning=True)
    other_bucket = env.create_bucket()
    queue = env.create_queue()
    env.route_eventbridge_to_queue(queue, bucket=bucket)
    stored = env.put_cloudtrail_object(bucket, AWKWARD_KEY, make_records(2, seed=8))
    elsewhere = ObjectInfo(bucket=other_bucket, key="AWSLogs/x.json.gz", etag="0" * 32, version_id=None, size=1)
    sent = env.send_eventbridge_object_created([stored, elsewhere])
    assert len(sent) == 2 and all(s.via == "eventbridge" for s in sent)

    (event,) = _bodies(env.drain(queue))  # the rule filters on the bucket name
    assert event["id"] == sent[0].message_id
    assert event["detail-type"] == "Object Created" and event["source"] == "aws.s3"
    assert event["region"] == "us-east-1" and event["resources"] == [f"arn:aws:s3:::{bucket}"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert "account" not in event, "moto's default target template drops 'account'"
    detail = event["detail"]
    assert detail == json.loads(sent[0].payload)
    assert detail["object"] == {
        "key": AWKWARD_KEY,
        "size": stored.size,
        "etag": stored.etag,
        "version-id": stored.version_id,
        "sequencer": stored.sequencer,
    }
    assert detail["reason"] == "PutObject"

    # When the envelope must be exactly AWS's (with "account"), send the whole event body directly.
    exact = env.send_raw(queue, eventbridge_object_event(stored))
    (direct,) = _bodies(env.drain(queue))
    assert direct == json.loads(exact.payload)
    assert direct["account"] == ACCOUNT_ID and direct["detail"]["object"]["etag"] == stored.etag
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", direct["time"])


def test_bucket_eventbridge_notification_as_moto_sends_it(env: AwsTestEnv) -> None:
    bucket = env.create_bucket()
    queue = env.create_queue()
    env.route_eventbridge_to_queue(queue, bucket=bucket)
    env.configure_bucket_notifications(bucket, eventbridge=True)
    assert env.queue_counts(queue).visible == 0, "no s3:TestEvent for EventBridge"
    stored = env.put_cloudtrail_object(bucket, AWKWARD_KEY, make_records(1, seed=9))
    (event,) = _bodies(env.drain(queue))
    assert event["account"] == ACCOUNT_ID and event["detail-type"] == "Object Created"
    moto_object = event["detail"]["object"]
    assert moto_object["key"] == AWKWARD_KEY
    assert moto_object["eTag"] == stored.etag and "etag" not in moto_object
    assert moto_object["version-id"] == "null", 'moto sends the string "null" for unversioned buckets'
    assert event["detail"]["reason"] == "ObjectCreated"
