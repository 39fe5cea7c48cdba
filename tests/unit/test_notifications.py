"""notifications.parse_message_body: real samples (tests/fixtures/notifications) and hand-made cases."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.bad_inputs import DELETE, NOTIFICATION_FIELD_NAMES, json_paths, replaced
from ta_aws_cloudtrail.notifications import (
    Notification,
    NotificationError,
    ObjectRef,
    parse_message_body,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOTIFICATIONS = FIXTURES / "notifications"
SHAPES = {"s3", "sns", "cloudtrail_sns", "eventbridge", "s3_test_event", "sns_control"}

S3_GUIDE = "amazon-s3-developer-guide/notification-content-structure"
CLOUDTRAIL_GUIDE_SNS = "aws-cloudtrail-user-guide/configure-sns-notifications-for-cloudtrail"
POWERTOOLS = "powertools-lambda-python"
LAMBDA_GO = "aws-lambda-go"

TRAIL_KEY = (
    "AWSLogs/111122223333/CloudTrail/us-east-1/2021/07/28/111122223333_CloudTrail_us-east-1_20210728T0000Z_abc.json.gz"
)


def sample_text(name: str) -> str:
    return (NOTIFICATIONS / name).read_text(encoding="utf-8")


def sample(name: str) -> Any:
    return json.loads(sample_text(name))


def sqs_bodies(name: str) -> List[str]:
    """The SQS message bodies of a Lambda SQS event sample."""
    return [record["body"] for record in sample(name)["Records"]]


def body_of(name: str, part: str) -> str:
    """A sample as an SQS body: the whole file, Records[0].body of a Lambda SQS event, or the envelope
    of a Lambda SNS event."""
    if part == "file":
        return sample_text(name)
    if part == "sqs body 0":
        return sqs_bodies(name)[0]
    if part == "sqs body 1":
        return sqs_bodies(name)[1]
    assert part == "sns envelope"
    return json.dumps(sample(name)["Records"][0]["Sns"])


def real_sns_envelope(message: str) -> dict:
    """The SNS envelope of powertools' SNS-to-SQS sample (a real delivery), carrying another Message."""
    envelope = json.loads(sqs_bodies(f"{POWERTOOLS}/snsSqsEvent.json")[0])
    envelope["Message"] = message
    return envelope


def error_of(body: Any) -> str:
    with pytest.raises(NotificationError) as caught:
        parse_message_body(body)
    return str(caught.value)


def guide_s3_record() -> dict:
    """The ObjectCreated:Put record of the S3 guide, to change one thing at a time."""
    return copy.deepcopy(sample(f"{S3_GUIDE}.example-04.json")["Records"][0])


def created_record(key: str = TRAIL_KEY, bucket: str = "trail-bucket", **object_fields: Any) -> dict:
    record = guide_s3_record()
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"] = dict({"key": key}, **object_fields)
    return record


def s3_body(*records: Any) -> str:
    return json.dumps({"Records": list(records)})


GUIDE_REF = ObjectRef(
    bucket="mybucket",
    key="HappyFace.jpg",
    key_as_sent="HappyFace.jpg",
    version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko",
    etag="d41d8cd98f00b204e9800998ecf8427e",
    size=1024,
)
HAPPY_FACE_REF = ObjectRef(
    bucket="sourcebucket",
    key="Happy Face.jpg",
    key_as_sent="Happy%20Face.jpg",
    version_id="version",
    etag="d41d8cd98f00b204e9800998ecf8427e",
    size=1024,
)
ARTIFACT_REF = ObjectRef(
    bucket="lambda-artifacts-deafc19498e3f2df",
    key="b21b84d653bb07b05b1e6b33684dc11b",
    key_as_sent="b21b84d653bb07b05b1e6b33684dc11b",
    etag="b21b84d653bb07b05b1e6b33684dc11b",
    size=1305107,
)
POWERTOOLS_SQS_REF = ObjectRef(
    bucket="xxx",
    key="test.pdf",
    key_as_sent="test.pdf",
    version_id="yd3d4HaWOT2zguDLvIQLU6ptDTwKBnQV",
    etag="2e3ad1e983318bbd8e73b080e2997980",
    size=104681,
)
EVENTBRIDGE_REF = ObjectRef(
    bucket="example-bucket",
    key="IMG_m7fzo3.jpg",
    key_as_sent="IMG_m7fzo3.jpg",
    etag="4e68adba0abe2dc8653dc3354e14c01d",
    size=184662,
)
GUIDE_TRAIL_KEYS = [
    "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/"
    "123456789012_CloudTrail_us-east-2_20160811T2215Z_kpaMYavMQA9Ahp7L.json.gz",
    "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/"
    "123456789012_CloudTrail_us-east-2_20160811T2210Z_zqDkyQv3TK8ZdLr0.json.gz",
    "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/"
    "123456789012_CloudTrail_us-east-2_20160811T2205Z_jaMVRa6JfdLCJYHP.json.gz",
]
GUIDE_TRAIL_KEY_2013 = (
    "AWSLogs/123456789012/CloudTrail/us-east-2/2013/12/13/"
    "123456789012_CloudTrail_us-west-2_20131213T1920Z_LnPgDQnpkSKEsppV.json.gz"
)


def trail_refs(bucket: str, keys: List[str]) -> List[ObjectRef]:
    return [ObjectRef(bucket, key, key) for key in keys]


# --- real samples ------------------------------------------------------------------------------------

ACCEPTED_SAMPLES = [
    (f"{S3_GUIDE}.example-01.json", "file", Notification("s3", [], 1, None)),
    (f"{S3_GUIDE}.example-02.json", "file", Notification("s3", [], 1, None)),
    (f"{S3_GUIDE}.example-03.json", "file", Notification("s3_test_event", [], 0, None)),
    (f"{S3_GUIDE}.example-04.json", "file", Notification("s3", [GUIDE_REF], 0, None)),
    (
        f"{CLOUDTRAIL_GUIDE_SNS}.example-01.json",
        "file",
        Notification("cloudtrail_sns", trail_refs("your-bucket-name", [GUIDE_TRAIL_KEY_2013]), 0, None),
    ),
    (
        f"{CLOUDTRAIL_GUIDE_SNS}.example-02.json",
        "file",
        Notification("cloudtrail_sns", trail_refs("your-bucket-name", GUIDE_TRAIL_KEYS), 0, None),
    ),
    (f"{LAMBDA_GO}/s3-event.json", "file", Notification("s3", [HAPPY_FACE_REF], 0, None)),
    (f"{LAMBDA_GO}/s3-event-with-decoded.json", "file", Notification("s3", [HAPPY_FACE_REF], 0, None)),
    (f"{LAMBDA_GO}/s3-glacier-event.json", "file", Notification("s3", [], 1, None)),
    (f"{LAMBDA_GO}/s3-intelligenttier-event.json", "file", Notification("s3", [], 1, None)),
    (f"{LAMBDA_GO}/s3-lifecycle-event.json", "file", Notification("s3", [], 1, None)),
    (f"{LAMBDA_GO}/s3-replication-event.json", "file", Notification("s3", [], 1, None)),
    (f"{LAMBDA_GO}/s3-restore-event.json", "file", Notification("s3", [], 1, None)),
    (f"{POWERTOOLS}/s3Event.json", "file", Notification("s3", [ARTIFACT_REF], 0, None)),
    (f"{POWERTOOLS}/s3EventGlacier.json", "file", Notification("s3", [ARTIFACT_REF], 0, None)),
    (f"{POWERTOOLS}/s3EventDeleteObject.json", "file", Notification("s3", [], 1, None)),
    (f"{POWERTOOLS}/s3SqsEvent.json", "sqs body 0", Notification("s3", [POWERTOOLS_SQS_REF], 0, None)),
    (
        f"{POWERTOOLS}/s3EventBridgeNotificationObjectCreatedEvent.json",
        "file",
        Notification("eventbridge", [EVENTBRIDGE_REF], 0, None),
    ),
    (
        f"{POWERTOOLS}/s3EventBridgeNotificationObjectDeletedEvent.json",
        "file",
        Notification("eventbridge", [], 1, None),
    ),
    (
        f"{POWERTOOLS}/s3EventBridgeNotificationObjectExpiredEvent.json",
        "file",
        Notification("eventbridge", [], 1, None),
    ),
    (
        f"{POWERTOOLS}/s3EventBridgeNotificationObjectRestoreCompletedEvent.json",
        "file",
        Notification("eventbridge", [], 1, None),
    ),
]


@pytest.mark.parametrize(
    ("name", "part", "expected"), ACCEPTED_SAMPLES, ids=[f"{n} {p}" for n, p, _ in ACCEPTED_SAMPLES]
)
def test_real_sample_gives_exact_notification(name: str, part: str, expected: Notification) -> None:
    assert parse_message_body(body_of(name, part)) == expected


NOT_S3_FIELDS = "The SNS Message is not an S3, EventBridge or CloudTrail notification"
REJECTED_SAMPLES = [
    (f"{LAMBDA_GO}/sns-event.json", "file", "S3 record 1 has no eventSource; expected 'aws:s3'."),
    (
        f"{LAMBDA_GO}/sns-event.json",
        "sns envelope",
        "The SNS Message is not valid JSON (Expecting value at line 1, column 1).",
    ),
    (
        f"{LAMBDA_GO}/sqs-event.json",
        "file",
        "S3 record 1 has 'aws:sqs' as eventSource instead of 'aws:s3'.",
    ),
    (
        f"{LAMBDA_GO}/sqs-event.json",
        "sqs body 0",
        "The message body is not valid JSON (Expecting value at line 1, column 1).",
    ),
    (f"{POWERTOOLS}/snsEvent.json", "file", "S3 record 1 has no eventSource; expected 'aws:s3'."),
    (
        f"{POWERTOOLS}/snsEvent.json",
        "sns envelope",
        "The SNS Message is not valid JSON (Expecting value at line 1, column 1).",
    ),
    (
        f"{POWERTOOLS}/snsSqsEvent.json",
        "sqs body 0",
        f"{NOT_S3_FIELDS} (its fields: 'message', 'username').",
    ),
    (
        f"{POWERTOOLS}/snsSqsFifoEvent.json",
        "sqs body 0",
        f"{NOT_S3_FIELDS} (its fields: 'message', 'username').",
    ),
    (
        f"{POWERTOOLS}/sqsEvent.json",
        "file",
        "S3 record 1 has 'aws:sqs' as eventSource instead of 'aws:s3'.",
    ),
    (
        f"{POWERTOOLS}/sqsEvent.json",
        "sqs body 0",
        "The message body is not valid JSON (Expecting value at line 1, column 1).",
    ),
    (
        f"{POWERTOOLS}/sqsEvent.json",
        "sqs body 1",
        "The message body is not an S3, SNS, EventBridge or CloudTrail notification (its fields: 'message').",
    ),
    (
        f"{POWERTOOLS}/sqsDlqTriggerEvent.json",
        "sqs body 0",
        "The message body is not valid JSON (Expecting value at line 1, column 1).",
    ),
    (
        f"{POWERTOOLS}/s3SqsEvent.json",
        "file",
        "S3 record 1 has 'aws:sqs' as eventSource instead of 'aws:s3'.",
    ),
    (
        f"{POWERTOOLS}/eventBridgeEvent.json",
        "file",
        "The EventBridge event has 'aws.ec2' as source instead of 'aws.s3'.",
    ),
]


@pytest.mark.parametrize(
    ("name", "part", "message"), REJECTED_SAMPLES, ids=[f"{n} {p}" for n, p, _ in REJECTED_SAMPLES]
)
def test_real_sample_that_announces_no_s3_object_is_rejected(name: str, part: str, message: str) -> None:
    assert error_of(body_of(name, part)) == message


WRAPPED_SAMPLES = [
    (f"{S3_GUIDE}.example-04.json", "sns", [GUIDE_REF], 0),
    (f"{S3_GUIDE}.example-03.json", "s3_test_event", [], 0),
    (f"{LAMBDA_GO}/s3-event.json", "sns", [HAPPY_FACE_REF], 0),
    (f"{POWERTOOLS}/s3EventDeleteObject.json", "sns", [], 1),
    (
        f"{CLOUDTRAIL_GUIDE_SNS}.example-02.json",
        "cloudtrail_sns",
        trail_refs("your-bucket-name", GUIDE_TRAIL_KEYS),
        0,
    ),
    (f"{POWERTOOLS}/s3EventBridgeNotificationObjectCreatedEvent.json", "eventbridge", [EVENTBRIDGE_REF], 0),
]


@pytest.mark.parametrize(("name", "shape", "objects", "skipped"), WRAPPED_SAMPLES)
def test_sample_inside_sns_envelope_keeps_its_objects_and_the_envelope(
    name: str, shape: str, objects: List[ObjectRef], skipped: int
) -> None:
    envelope = real_sns_envelope(sample_text(name))
    assert parse_message_body(json.dumps(envelope, indent=2)) == Notification(shape, objects, skipped, envelope)


# --- S3 event notifications ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_name",
    [
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectCreated:Put",
    ],
)
def test_object_created_record_becomes_a_ref(event_name: str) -> None:
    record = replaced(created_record(size=10), ("eventName",), event_name)
    assert parse_message_body(s3_body(record)) == Notification(
        "s3", [ObjectRef("trail-bucket", TRAIL_KEY, TRAIL_KEY, size=10)], 0, None
    )


@pytest.mark.parametrize(
    "event_name",
    [
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "ObjectRestore:Post",
        "s3:ObjectRestore:Completed",
        "s3:Replication:OperationFailedReplication",
        "s3:LifecycleTransition",
        "LifecycleExpiration:Delete",
        "s3:IntelligentTiering",
        "ObjectTagging:Put",
        "ObjectAcl:Put",
        "ObjectCreated",
        "objectcreated:put",
        "",
    ],
)
def test_record_that_is_not_object_created_is_counted_as_skipped(event_name: str) -> None:
    record = replaced(created_record(), ("eventName",), event_name)
    assert parse_message_body(s3_body(record)) == Notification("s3", [], 1, None)


def test_skipped_record_needs_no_s3_section() -> None:
    record = replaced(replaced(created_record(), ("eventName",), "ObjectRemoved:Delete"), ("s3",), DELETE)
    assert parse_message_body(s3_body(record)) == Notification("s3", [], 1, None)


def test_several_records_give_refs_in_order_without_duplicates_and_count_skipped() -> None:
    first = created_record(key="a.json.gz", eTag="e1")
    second = created_record(key="b.json.gz", eTag="e2")
    removed = replaced(created_record(key="c.json.gz"), ("eventName",), "ObjectRemoved:Delete")
    same_key_other_version = created_record(key="a.json.gz", eTag="e1", versionId="v2")
    body = s3_body(first, removed, second, first, same_key_other_version)
    assert parse_message_body(body) == Notification(
        "s3",
        [
            ObjectRef("trail-bucket", "a.json.gz", "a.json.gz", etag="e1"),
            ObjectRef("trail-bucket", "b.json.gz", "b.json.gz", etag="e2"),
            ObjectRef("trail-bucket", "a.json.gz", "a.json.gz", version_id="v2", etag="e1"),
        ],
        1,
        None,
    )


@pytest.mark.parametrize("version", ["2.0", "2.1", "2.2", "2.3", "2"])
def test_event_version_2_is_accepted(version: str) -> None:
    record = replaced(created_record(), ("eventVersion",), version)
    assert parse_message_body(s3_body(record)).objects == [ObjectRef("trail-bucket", TRAIL_KEY, TRAIL_KEY)]


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("1.0", "S3 record 1 has '1.0' as eventVersion instead of a 2.x version."),
        ("3.0", "S3 record 1 has '3.0' as eventVersion instead of a 2.x version."),
        ("20.1", "S3 record 1 has '20.1' as eventVersion instead of a 2.x version."),
        ("", "S3 record 1 has '' as eventVersion instead of a 2.x version."),
        (2.1, "S3 record 1 has a number as eventVersion instead of a 2.x version."),
        (None, "S3 record 1 has null as eventVersion instead of a 2.x version."),
        (DELETE, "S3 record 1 has no eventVersion; expected a 2.x version."),
    ],
)
def test_event_version_other_than_2_is_rejected(version: Any, message: str) -> None:
    assert error_of(s3_body(replaced(created_record(), ("eventVersion",), version))) == message


def test_event_version_is_checked_on_skipped_records_too() -> None:
    record = replaced(created_record(), ("eventName",), "ObjectRemoved:Delete")
    record["eventVersion"] = "1.0"
    assert error_of(s3_body(record)) == "S3 record 1 has '1.0' as eventVersion instead of a 2.x version."


@pytest.mark.parametrize(
    ("key_as_sent", "key"),
    [
        ("Happy%20Face.jpg", "Happy Face.jpg"),
        ("my+logs/a+b.json.gz", "my logs/a b.json.gz"),
        ("a%2Bb.json.gz", "a+b.json.gz"),
        ("caf%C3%A9/%E6%97%A5%E6%9C%AC.json.gz", "café/日本.json.gz"),
        ("100%25.json", "100%.json"),
        ("key%3Dvalue", "key=value"),
        ("50%off.json", "50%off.json"),
        ("bad%FFbyte.json", "bad\ufffdbyte.json"),
        ("déjà vu.json", "déjà vu.json"),
        (TRAIL_KEY, TRAIL_KEY),
    ],
)
def test_s3_key_is_url_decoded_and_kept_as_sent(key_as_sent: str, key: str) -> None:
    (ref,) = parse_message_body(s3_body(created_record(key=key_as_sent))).objects
    assert (ref.key, ref.key_as_sent, ref.source) == (key, key_as_sent, f"s3://trail-bucket/{key}")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, 0),
        (1024, 1024),
        ("1024", 1024),
        (1024.0, 1024),
        ("object-size", None),
        (-1, None),
        (1.5, None),
        (True, None),
        (None, None),
        ("1e3", None),
        ("\u0663", None),
        ("9" * 30, None),
        ({"bytes": 1}, None),
        (DELETE, None),
    ],
)
def test_unreadable_size_becomes_none(size: Any, expected: Optional[int]) -> None:
    record = replaced(created_record(size=0), ("s3", "object", "size"), size)
    assert parse_message_body(s3_body(record)).objects[0].size == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc", "abc"), ("", None), (None, None), (7, None), (["v"], None), ("\ud800", None), (DELETE, None)],
)
def test_version_id_and_etag_are_optional_text(value: Any, expected: Optional[str]) -> None:
    record = created_record(versionId="placeholder", eTag="placeholder")
    record = replaced(replaced(record, ("s3", "object", "versionId"), value), ("s3", "object", "eTag"), value)
    (ref,) = parse_message_body(s3_body(record)).objects
    assert (ref.version_id, ref.etag) == (expected, expected)


def test_s3_guide_template_with_object_created_name_reads_placeholders_leniently() -> None:
    template = sample(f"{S3_GUIDE}.example-01.json")
    template["Records"][0]["eventName"] = "ObjectCreated:Put"
    assert parse_message_body(json.dumps(template)) == Notification(
        "s3",
        [
            ObjectRef(
                bucket="bucket-name",
                key="object-key",
                key_as_sent="object-key",
                version_id="object version if bucket is versioning-enabled, otherwise null",
                etag="object eTag",
                size=None,
            )
        ],
        0,
        None,
    )


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("eventSource",), "aws:sqs", "S3 record 1 has 'aws:sqs' as eventSource instead of 'aws:s3'."),
        (("eventSource",), DELETE, "S3 record 1 has no eventSource; expected 'aws:s3'."),
        (("eventName",), DELETE, "S3 record 1 has no eventName; expected a string."),
        (("eventName",), 5, "S3 record 1 has a number as eventName instead of a string."),
        (("s3",), DELETE, "S3 record 1 has no s3; expected an object."),
        (("s3",), [], "S3 record 1 has a list as s3 instead of an object."),
        (("s3", "bucket"), DELETE, "S3 record 1 has no s3.bucket; expected an object."),
        (("s3", "bucket"), "trail-bucket", "S3 record 1 has 'trail-bucket' as s3.bucket instead of an object."),
        (("s3", "bucket", "name"), DELETE, "S3 record 1 has no s3.bucket.name; expected an S3 bucket name."),
        (("s3", "bucket", "name"), "", "S3 record 1 has '' as s3.bucket.name instead of an S3 bucket name."),
        (
            ("s3", "bucket", "name"),
            "a/b",
            "S3 record 1 has 'a/b' as s3.bucket.name instead of an S3 bucket name.",
        ),
        (
            ("s3", "bucket", "name"),
            12,
            "S3 record 1 has a number as s3.bucket.name instead of an S3 bucket name.",
        ),
        (("s3", "object"), DELETE, "S3 record 1 has no s3.object; expected an object."),
        (("s3", "object"), None, "S3 record 1 has null as s3.object instead of an object."),
        (
            ("s3", "object", "key"),
            DELETE,
            "S3 record 1 has no s3.object.key; expected a non-empty object key.",
        ),
        (
            ("s3", "object", "key"),
            12345,
            "S3 record 1 has a number as s3.object.key instead of a non-empty object key.",
        ),
        (
            ("s3", "object", "key"),
            "",
            "S3 record 1 has '' as s3.object.key instead of a non-empty object key.",
        ),
        (
            ("s3", "object", "key"),
            "AWSLogs/\ud800.json",
            "S3 record 1 has an object key in s3.object.key that is not valid Unicode.",
        ),
    ],
)
def test_malformed_object_created_record_is_rejected(path: Tuple[str, ...], value: Any, message: str) -> None:
    assert error_of(s3_body(replaced(created_record(), path, value))) == message


def test_error_names_the_bad_record_among_several() -> None:
    body = s3_body(created_record(), replaced(created_record(), ("s3", "object", "key"), 7))
    assert error_of(body) == "S3 record 2 has a number as s3.object.key instead of a non-empty object key."


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({}, "The S3 notification has an object as Records instead of a list."),
        ("[]", "The S3 notification has '[]' as Records instead of a list."),
        (None, "The S3 notification has null as Records instead of a list."),
        ([], "The S3 notification has an empty Records list."),
        ([42], "S3 record 1 is a number instead of an object."),
        ([[]], "S3 record 1 is a list instead of an object."),
    ],
)
def test_malformed_records_list_is_rejected(records: Any, message: str) -> None:
    assert error_of(json.dumps({"Records": records})) == message


# --- SNS envelopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_sns_subscription_control_message_has_no_objects(message_type: str) -> None:
    envelope = real_sns_envelope("You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.")
    envelope["Type"] = message_type
    envelope["SubscribeURL"] = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
    assert parse_message_body(json.dumps(envelope)) == Notification("sns_control", [], 0, envelope)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Type": "Weird"}, "The SNS message has 'Weird' as Type instead of 'Notification'."),
        ({"Type": None}, "The SNS message has null as Type instead of 'Notification'."),
        ({"Message": DELETE}, "The SNS message has no Message; expected a string."),
        ({"Message": {"Records": []}}, "The SNS message has an object as Message instead of a string."),
        ({"Message": "[1, 2]"}, "The SNS Message is a list instead of a JSON object."),
        ({"Message": '"Records"'}, "The SNS Message is a string instead of a JSON object."),
        ({"Message": "{}"}, f"{NOT_S3_FIELDS} (it has no fields)."),
        ({"Message": "[" * 100_000}, "The SNS Message is nested too deeply to be a notification."),
        (
            {"Message": '{"Records": []}'},
            "The S3 notification has an empty Records list.",
        ),
    ],
)
def test_unusable_sns_envelope_is_rejected(change: dict, message: str) -> None:
    envelope = real_sns_envelope(sample_text(f"{S3_GUIDE}.example-04.json"))
    for name, value in change.items():
        envelope = replaced(envelope, (name,), value)
    assert error_of(json.dumps(envelope)) == message


def test_sns_envelope_inside_sns_envelope_is_rejected() -> None:
    inner = real_sns_envelope(sample_text(f"{S3_GUIDE}.example-04.json"))
    outer = real_sns_envelope(json.dumps(inner))
    assert error_of(json.dumps(outer)) == (
        f"{NOT_S3_FIELDS} (its fields: 'Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', ...)."
    )


# --- CloudTrail's own SNS notification -----------------------------------------------------------------


def test_cloudtrail_keys_are_not_url_decoded_and_duplicates_are_dropped() -> None:
    encoded_looking = "AWSLogs/111122223333/CloudTrail/us-east-1/2021/07/28/a+b%20c.json.gz"
    body = json.dumps({"s3Bucket": "trail-bucket", "s3ObjectKey": [TRAIL_KEY, encoded_looking, TRAIL_KEY]})
    assert parse_message_body(body) == Notification(
        "cloudtrail_sns", trail_refs("trail-bucket", [TRAIL_KEY, encoded_looking]), 0, None
    )


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"s3ObjectKey": [TRAIL_KEY]}, "The CloudTrail notification has no s3Bucket; expected an S3 bucket name."),
        (
            {"s3Bucket": ["trail-bucket"], "s3ObjectKey": [TRAIL_KEY]},
            "The CloudTrail notification has a list as s3Bucket instead of an S3 bucket name.",
        ),
        (
            {"s3Bucket": "trail-bucket"},
            "The CloudTrail notification has no s3ObjectKey; expected a list of object keys.",
        ),
        (
            {"s3Bucket": "trail-bucket", "s3ObjectKey": "AWSLogs/x.json.gz"},
            "The CloudTrail notification has 'AWSLogs/x.json.gz' as s3ObjectKey instead of a list of object keys.",
        ),
        (
            {"s3Bucket": "trail-bucket", "s3ObjectKey": []},
            "The CloudTrail notification has an empty s3ObjectKey list.",
        ),
        (
            {"s3Bucket": "trail-bucket", "s3ObjectKey": [TRAIL_KEY, 7]},
            "The CloudTrail notification has a number as s3ObjectKey[1] instead of a non-empty object key.",
        ),
        (
            {"s3Bucket": "trail-bucket", "s3ObjectKey": [""]},
            "The CloudTrail notification has '' as s3ObjectKey[0] instead of a non-empty object key.",
        ),
    ],
)
def test_malformed_cloudtrail_notification_is_rejected(message: dict, error: str) -> None:
    assert error_of(json.dumps(message)) == error


# --- EventBridge ---------------------------------------------------------------------------------------


def eventbridge_created() -> dict:
    return sample(f"{POWERTOOLS}/s3EventBridgeNotificationObjectCreatedEvent.json")


def test_eventbridge_key_is_url_decoded_and_version_id_read() -> None:
    event = eventbridge_created()
    event["detail"]["object"]["key"] = "AWSLogs/111122223333/CloudTrail/my+file%3D1.json.gz"
    event["detail"]["object"]["version-id"] = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert parse_message_body(json.dumps(event)) == Notification(
        "eventbridge",
        [
            ObjectRef(
                bucket="example-bucket",
                key="AWSLogs/111122223333/CloudTrail/my file=1.json.gz",
                key_as_sent="AWSLogs/111122223333/CloudTrail/my+file%3D1.json.gz",
                version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
                etag="4e68adba0abe2dc8653dc3354e14c01d",
                size=184662,
            )
        ],
        0,
        None,
    )


@pytest.mark.parametrize(
    "detail_type",
    [
        "Object Deleted",
        "Object Restore Initiated",
        "Object Restore Completed",
        "Object Restore Expired",
        "Object Tags Added",
        "Object ACL Updated",
        "Object Storage Class Changed",
        "Object Access Tier Changed",
        "object created",
    ],
)
def test_eventbridge_event_other_than_object_created_is_skipped(detail_type: str) -> None:
    event = eventbridge_created()
    event["detail-type"] = detail_type
    assert parse_message_body(json.dumps(event)) == Notification("eventbridge", [], 1, None)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("source",), DELETE, "The EventBridge event has no source; expected 'aws.s3'."),
        (("source",), "aws.ec2", "The EventBridge event has 'aws.ec2' as source instead of 'aws.s3'."),
        (("detail-type",), 5, "The EventBridge event has a number as detail-type instead of a string."),
        (("detail",), DELETE, "The EventBridge event has no detail; expected an object."),
        (("detail",), "x", "The EventBridge event has 'x' as detail instead of an object."),
        (
            ("detail", "bucket", "name"),
            True,
            "The EventBridge event has a boolean as detail.bucket.name instead of an S3 bucket name.",
        ),
        (
            ("detail", "object", "key"),
            DELETE,
            "The EventBridge event has no detail.object.key; expected a non-empty object key.",
        ),
    ],
)
def test_malformed_eventbridge_event_is_rejected(path: Tuple[str, ...], value: Any, message: str) -> None:
    assert error_of(json.dumps(replaced(eventbridge_created(), path, value))) == message


# --- S3 test event and bodies that are not notifications --------------------------------------------------


def test_s3_test_event_needs_both_service_and_event() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:ObjectCreated:Put", "Bucket": "b"})
    assert error_of(body) == (
        "The message body is not an S3, SNS, EventBridge or CloudTrail notification "
        "(its fields: 'Service', 'Event', 'Bucket')."
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "The message body is not valid JSON (Expecting value at line 1, column 1)."),
        ("   ", "The message body is not valid JSON (Expecting value at line 1, column 4)."),
        ('{"Records": [', "The message body is not valid JSON (Expecting value at line 1, column 14)."),
        ("\x00", "The message body is not valid JSON (Expecting value at line 1, column 1)."),
        ("[]", "The message body is a list instead of a JSON object."),
        ('"Records"', "The message body is a string instead of a JSON object."),
        ("42", "The message body is a number instead of a JSON object."),
        ("null", "The message body is null instead of a JSON object."),
        ("true", "The message body is a boolean instead of a JSON object."),
        ("{}", "The message body is not an S3, SNS, EventBridge or CloudTrail notification (it has no fields)."),
        ("[" * 100_000, "The message body is nested too deeply to be a notification."),
        ('{"Records": [' + '{"a": ' * 50_000, "The message body is nested too deeply to be a notification."),
        ('{"size": ' + "9" * 10_000 + "}", "The message body holds a number too long to read."),
        (b"{}", "The message body is not text."),
        (None, "The message body is not text."),
    ],
)
def test_body_that_is_not_a_notification_is_rejected(body: Any, message: str) -> None:
    assert error_of(body) == message


def test_unrecognised_body_error_shows_at_most_five_short_escaped_field_names() -> None:
    long_name = "x" * 100
    body = json.dumps({"numéro": 1, "line\nbreak": 2, long_name: 3, "d": 4, "e": 5, "f": 6})
    assert error_of(body) == (
        "The message body is not an S3, SNS, EventBridge or CloudTrail notification (its fields: "
        "'num\\xe9ro', 'line\\nbreak', '" + "x" * 60 + "..., 'd', 'e', ...)."
    )


def test_error_never_repeats_a_huge_body() -> None:
    garbage = "not json " * 1_000_000
    message = error_of(garbage)
    assert message == "The message body is not valid JSON (Expecting value at line 1, column 1)."
    huge_field = json.dumps({"unexpected " * 100_000: 1})
    assert len(error_of(huge_field)) < 200


def test_literal_lone_surrogate_in_body_is_rejected_for_a_key() -> None:
    body = '{"s3Bucket": "trail-bucket", "s3ObjectKey": ["AWSLogs/\ud800.json.gz"]}'
    assert error_of(body) == (
        "The CloudTrail notification has an object key in s3ObjectKey[0] that is not valid Unicode."
    )


def test_huge_notification_with_many_records_is_parsed_whole() -> None:
    record_text = json.dumps(created_record(key="KEY"))
    records = [
        record_text.replace("KEY", f"AWSLogs/111122223333/CloudTrail/k{index}.json.gz") for index in range(20_000)
    ]
    body = '{"Records": [' + ", ".join(records) + "]}"
    assert len(body) > 10_000_000
    notification = parse_message_body(body)
    assert len(notification.objects) == 20_000
    assert notification.objects[-1].key == "AWSLogs/111122223333/CloudTrail/k19999.json.gz"


def test_object_ref_source_uses_the_decoded_key() -> None:
    ref = ObjectRef("trail-bucket", "my logs/a+b.json", "my+logs/a%2Bb.json")
    assert ref.source == "s3://trail-bucket/my logs/a+b.json"


# --- property tests: nothing but Notification or NotificationError comes out ------------------------------

FIELD_NAMES = st.sampled_from(NOTIFICATION_FIELD_NAMES)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(["aws:s3", "2.1", "ObjectCreated:Put", "aws.s3", "Object Created", "Notification"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(FIELD_NAMES | st.text(), children, max_size=4),
    max_leaves=25,
)


def check_outcome(body: str) -> Optional[Notification]:
    """Parse body; assert that only a well-formed Notification or a one-sentence NotificationError results."""
    try:
        result = parse_message_body(body)
    except NotificationError as error:
        message = str(error)
        assert message.endswith(".")
        assert "\n" not in message
        assert len(message) < 500
        return None
    assert isinstance(result, Notification)
    assert result.shape in SHAPES
    assert result.skipped_records >= 0
    top = json.loads(body)
    sns_wrapped = "Type" in top and "TopicArn" in top
    assert (result.sns_envelope is not None) == sns_wrapped
    assert result.shape not in (("s3",) if sns_wrapped else ("sns", "sns_control"))
    for ref in result.objects:
        assert isinstance(ref, ObjectRef)
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,255}", ref.bucket)
        assert isinstance(ref.key, str) and ref.key
        assert isinstance(ref.key_as_sent, str) and ref.key_as_sent
        assert ref.size is None or (type(ref.size) is int and ref.size >= 0)
        assert ref.version_id is None or (isinstance(ref.version_id, str) and ref.version_id)
        assert ref.etag is None or (isinstance(ref.etag, str) and ref.etag)
    assert len(set(result.objects)) == len(result.objects)
    return result


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_any_json_value_gives_notification_or_notification_error(value: Any) -> None:
    check_outcome(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_gives_notification_or_notification_error(text: str) -> None:
    check_outcome(text)


MUTATION_BASES = [
    ("raw", sample(f"{S3_GUIDE}.example-04.json")),
    ("raw", sample(f"{CLOUDTRAIL_GUIDE_SNS}.example-02.json")),
    ("raw", sample(f"{POWERTOOLS}/s3EventBridgeNotificationObjectCreatedEvent.json")),
    ("raw", sample(f"{S3_GUIDE}.example-03.json")),
    ("sns", sample(f"{S3_GUIDE}.example-04.json")),
    ("envelope", real_sns_envelope(sample_text(f"{CLOUDTRAIL_GUIDE_SNS}.example-01.json"))),
]


@st.composite
def mutated_notifications(draw: st.DrawFn) -> str:
    wrapping, base = draw(st.sampled_from(MUTATION_BASES))
    path = draw(st.sampled_from(list(json_paths(base))))
    new = draw(JSON_VALUES | st.just(DELETE)) if path else draw(JSON_VALUES)
    mutated = replaced(base, path, new)
    if wrapping == "sns":
        return json.dumps(real_sns_envelope(json.dumps(mutated)))
    return json.dumps(mutated)


@settings(max_examples=500, deadline=None)
@given(mutated_notifications())
def test_mutated_real_notification_gives_notification_or_notification_error(body: str) -> None:
    check_outcome(body)


# --- fixture provenance -----------------------------------------------------------------------------------


def test_notice_lists_every_fixture_file_with_its_checksum() -> None:
    notice = (FIXTURES / "NOTICE").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^ {4}(\S+)\n {6}sha256 ([0-9a-f]{64})$", notice, flags=re.MULTILINE))
    on_disk = {
        path.relative_to(FIXTURES).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("notifications", "cloudtrail")
        for path in (FIXTURES / folder).rglob("*")
        if path.is_file()
    }
    assert len(on_disk) == 84
    assert listed == on_disk


def test_the_null_version_of_an_unversioned_bucket_is_no_version():
    body = json.dumps(
        {
            "version": "0",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "k", "version-id": "null", "etag": "e"}},
        }
    )
    [ref] = parse_message_body(body).objects
    assert ref.version_id is None and ref.etag == "e"
