"""SQS message body -> the S3 objects it announces.

Recognised without configuration: S3 event notifications, the same wrapped in an SNS envelope (SNS raw
delivery is simply the inner message), CloudTrail's own SNS notification (`s3Bucket` / `s3ObjectKey`),
EventBridge S3 events and the S3 test event. Pure: no I/O. Any body that is not one of these raises
NotificationError, whose text is one sentence an admin can act on and never repeats the whole body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple
from urllib.parse import unquote_plus

SHAPE_S3 = "s3"
SHAPE_SNS = "sns"
SHAPE_CLOUDTRAIL_SNS = "cloudtrail_sns"
SHAPE_EVENTBRIDGE = "eventbridge"
SHAPE_S3_TEST_EVENT = "s3_test_event"
SHAPE_SNS_CONTROL = "sns_control"

# Bucket names as botocore accepts them: legacy us-east-1 names may have upper case and '_'.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")
_SNS_CONTROL_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
# No real size has more digits (S3 objects are at most tens of TB); int() of huge strings is refused.
_MAX_SIZE_DIGITS = 19
_MAX_SHOWN_CHARS = 60
_MAX_SHOWN_FIELDS = 5


# Tells an absent field apart from one that is JSON null.
_MISSING: Any = object()


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object announced by a notification."""

    bucket: str
    key: str
    key_as_sent: str
    version_id: Optional[str] = None
    etag: Optional[str] = None
    size: Optional[int] = None

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class Notification:
    """What one SQS message announces."""

    shape: str
    objects: List[ObjectRef]
    skipped_records: int
    sns_envelope: Optional[dict]


class NotificationError(ValueError):
    """The message body is not a notification this input understands."""


def parse_message_body(body: str) -> Notification:
    """Parse one SQS message body; raises NotificationError (only) for anything unusable."""
    if not isinstance(body, str):
        raise NotificationError("The message body is not text.")
    message = _load_json_object(body, "The message body")
    if "Type" in message and "TopicArn" in message:
        return _parse_sns_envelope(message)
    return _parse_payload(message, "The message body", None)


def _parse_sns_envelope(envelope: dict) -> Notification:
    owner = "The SNS message"
    message_type = envelope["Type"]
    if message_type in _SNS_CONTROL_TYPES:
        return Notification(SHAPE_SNS_CONTROL, [], 0, envelope)
    if message_type != "Notification":
        raise _wrong(owner, "Type", message_type, "'Notification'")
    inner_text = envelope.get("Message", _MISSING)
    if not isinstance(inner_text, str):
        raise _wrong(owner, "Message", inner_text, "a string")
    inner = _load_json_object(inner_text, "The SNS Message")
    return _parse_payload(inner, "The SNS Message", envelope)


def _parse_payload(message: dict, subject: str, sns_envelope: Optional[dict]) -> Notification:
    """Shape of a body, or of an SNS Message: the shape names the inner format, except that S3 Records
    inside SNS are "sns"."""
    if "Records" in message:
        objects, skipped = _parse_s3_records(message["Records"])
        return Notification(SHAPE_S3 if sns_envelope is None else SHAPE_SNS, objects, skipped, sns_envelope)
    if "s3ObjectKey" in message or "s3Bucket" in message:
        return Notification(SHAPE_CLOUDTRAIL_SNS, _parse_cloudtrail_sns(message), 0, sns_envelope)
    if "detail-type" in message:
        objects, skipped = _parse_eventbridge(message)
        return Notification(SHAPE_EVENTBRIDGE, objects, skipped, sns_envelope)
    if message.get("Service") == "Amazon S3" and message.get("Event") == "s3:TestEvent":
        return Notification(SHAPE_S3_TEST_EVENT, [], 0, sns_envelope)
    kinds = "S3, SNS, EventBridge or CloudTrail" if sns_envelope is None else "S3, EventBridge or CloudTrail"
    raise NotificationError(f"{subject} is not an {kinds} notification ({_describe_fields(message)}).")


def _parse_s3_records(records: Any) -> Tuple[List[ObjectRef], int]:
    owner = "The S3 notification"
    if not isinstance(records, list):
        raise _wrong(owner, "Records", records, "a list")
    if not records:
        raise NotificationError(f"{owner} has an empty Records list.")
    objects = []
    skipped = 0
    for number, record in enumerate(records, start=1):
        ref = _parse_s3_record(record, f"S3 record {number}")
        if ref is None:
            skipped += 1
        else:
            objects.append(ref)
    return _unique(objects), skipped


def _parse_s3_record(record: Any, owner: str) -> Optional[ObjectRef]:
    """The object a record announces, or None for a record that is not ObjectCreated."""
    if not isinstance(record, dict):
        raise NotificationError(f"{owner} is {_json_type(record)} instead of an object.")
    source = record.get("eventSource", _MISSING)
    if source != "aws:s3":
        raise _wrong(owner, "eventSource", source, "'aws:s3'")
    version = record.get("eventVersion", _MISSING)
    if not (isinstance(version, str) and version.split(".")[0] == "2"):
        raise _wrong(owner, "eventVersion", version, "a 2.x version")
    event_name = record.get("eventName", _MISSING)
    if not isinstance(event_name, str):
        raise _wrong(owner, "eventName", event_name, "a string")
    # aws-lambda-go's samples (and some tools) write "s3:ObjectCreated:Put".
    if event_name.startswith("s3:"):
        event_name = event_name[len("s3:") :]
    if not event_name.startswith("ObjectCreated:"):
        return None
    bucket = _bucket_name(_lookup(record, ("s3", "bucket", "name"), owner), owner, "s3.bucket.name")
    key_as_sent = _object_key(_lookup(record, ("s3", "object", "key"), owner), owner, "s3.object.key")
    details = record["s3"]["object"]
    return ObjectRef(
        bucket=bucket,
        key=unquote_plus(key_as_sent),
        key_as_sent=key_as_sent,
        version_id=_version_id(details.get("versionId")),
        etag=_optional_text(details.get("eTag")),
        size=_size(details.get("size")),
    )


def _parse_cloudtrail_sns(message: dict) -> List[ObjectRef]:
    owner = "The CloudTrail notification"
    bucket = _bucket_name(message.get("s3Bucket", _MISSING), owner, "s3Bucket")
    keys = message.get("s3ObjectKey", _MISSING)
    if not isinstance(keys, list):
        raise _wrong(owner, "s3ObjectKey", keys, "a list of object keys")
    if not keys:
        raise NotificationError(f"{owner} has an empty s3ObjectKey list.")
    # CloudTrail does not URL-encode these keys.
    refs = [
        ObjectRef(bucket, key, key)
        for key in (_object_key(key, owner, f"s3ObjectKey[{index}]") for index, key in enumerate(keys))
    ]
    return _unique(refs)


def _parse_eventbridge(message: dict) -> Tuple[List[ObjectRef], int]:
    owner = "The EventBridge event"
    source = message.get("source", _MISSING)
    if source != "aws.s3":
        raise _wrong(owner, "source", source, "'aws.s3'")
    detail_type = message["detail-type"]
    if not isinstance(detail_type, str):
        raise _wrong(owner, "detail-type", detail_type, "a string")
    if detail_type != "Object Created":
        return [], 1
    bucket = _bucket_name(_lookup(message, ("detail", "bucket", "name"), owner), owner, "detail.bucket.name")
    key_as_sent = _object_key(_lookup(message, ("detail", "object", "key"), owner), owner, "detail.object.key")
    details = message["detail"]["object"]
    ref = ObjectRef(
        bucket=bucket,
        key=unquote_plus(key_as_sent),
        key_as_sent=key_as_sent,
        version_id=_version_id(details.get("version-id")),
        etag=_optional_text(details.get("etag")),
        size=_size(details.get("size")),
    )
    return [ref], 0


def _load_json_object(text: str, subject: str) -> dict:
    try:
        value = json.loads(text)
    except RecursionError:
        raise NotificationError(f"{subject} is nested too deeply to be a notification.") from None
    except json.JSONDecodeError as error:
        raise NotificationError(
            f"{subject} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})."
        ) from None
    except ValueError:
        # An integer literal longer than Python's int conversion limit.
        raise NotificationError(f"{subject} holds a number too long to read.") from None
    if not isinstance(value, dict):
        raise NotificationError(f"{subject} is {_json_type(value)} instead of a JSON object.")
    return value


def _lookup(container: dict, path: Sequence[str], owner: str) -> Any:
    """The value at a path of nested objects, or _MISSING; an error if a step on the way is no object."""
    value: Any = container
    for depth, name in enumerate(path):
        if not isinstance(value, dict):
            raise _wrong(owner, ".".join(path[:depth]), value, "an object")
        value = value.get(name, _MISSING)
    return value


def _bucket_name(value: Any, owner: str, field: str) -> str:
    if not (isinstance(value, str) and _BUCKET_NAME.fullmatch(value)):
        raise _wrong(owner, field, value, "an S3 bucket name")
    return value


def _object_key(value: Any, owner: str, field: str) -> str:
    if not (isinstance(value, str) and value):
        raise _wrong(owner, field, value, "a non-empty object key")
    if not _is_valid_unicode(value):
        # S3 keys are UTF-8: a lone surrogate (from a JSON escape) cannot name an object.
        raise NotificationError(f"{owner} has an object key in {field} that is not valid Unicode.")
    return value


def _optional_text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value and _is_valid_unicode(value) else None


def _version_id(value: Any) -> Optional[str]:
    # "null" names the null version of an unversioned bucket: reading the key without a version is the same
    version = _optional_text(value)
    return None if version == "null" else version


def _size(value: Any) -> Optional[int]:
    """Size in bytes, or None when absent or unreadable (AWS doc templates say "object-size")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_SIZE_DIGITS:
        return int(value)
    return None


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unique(refs: List[ObjectRef]) -> List[ObjectRef]:
    return list(dict.fromkeys(refs))


def _wrong(owner: str, field: str, value: Any, expected: str) -> NotificationError:
    if value is _MISSING:
        return NotificationError(f"{owner} has no {field}; expected {expected}.")
    return NotificationError(f"{owner} has {_describe(value)} as {field} instead of {expected}.")


def _describe(value: Any) -> str:
    """A short, log-safe rendering: strings quoted (truncated, non-ASCII escaped), others by JSON type."""
    if isinstance(value, str):
        return _quote(value)
    return _json_type(value)


def _describe_fields(message: dict) -> str:
    if not message:
        return "it has no fields"
    names = [_quote(name) for name in list(message)[:_MAX_SHOWN_FIELDS]]
    more = ", ..." if len(message) > _MAX_SHOWN_FIELDS else ""
    return f"its fields: {', '.join(names)}{more}"


def _quote(text: str) -> str:
    shown = ascii(text[:_MAX_SHOWN_CHARS])
    # +2 for the quotes; escapes (non-ASCII, control characters) can make a short text long.
    if len(text) <= _MAX_SHOWN_CHARS and len(shown) <= _MAX_SHOWN_CHARS + 2:
        return shown
    return shown[: _MAX_SHOWN_CHARS + 1] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
