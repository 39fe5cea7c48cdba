"""Bad inputs for the add-on, each with what a correct reader must make of it.

Two kinds, both generated from ``(family, seed)`` so that any failure names a case that can be replayed:

- SQS message bodies, :func:`body_case`: random JSON, every real notification shape with a wrong value in
  every field, huge and deeply nested bodies, invalid Unicode, control characters, odd SNS envelopes,
  non-ASCII keys, truncated and mutated bodies. Whatever comes in, a parser may only accept it or reject it
  with a short message.
- CloudTrail objects, :func:`object_case`: damaged gzip or JSON, odd records, decompression bombs, each with
  the number of records that are complete before the damage. A streaming reader must yield exactly those
  (unless the damage is inside compressed data that still decompresses, see ``ObjectCase.garbled``), then fail.

The expectations are computed here from the bytes with Python's own ``json`` and ``zlib``, never with the
add-on's code. :func:`integration_bad_bodies` is a fixed list of bodies that no notification parser may
accept, with the reason the add-on gives for each.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import random
import re
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from harness.cloudtrail_data import make_records

# --- message bodies ------------------------------------------------------------------------------------------

BUCKET = "trail-bucket-7f3a"
LOG_KEY = (
    "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/23/"
    "123456789012_CloudTrail_us-east-1_20261123T1200Z_AbCdEfGhIjKlMnOp.json.gz"
)
LOG_KEY_2 = LOG_KEY.replace("AbCdEfGhIjKlMnOp", "QrStUvWxYz012345")
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:cloudtrail-notifications"
DEEP_LEVELS = 100_000
HUGE_BODY_CHARS = 1 << 20


@dataclass(frozen=True)
class BodyCase:
    family: str
    seed: int
    body: str
    # A phrase the rejection must contain; None when the body may also be accepted (a mutation can stay valid).
    reason: Optional[str] = None


def s3_event_payload(keys: Sequence[str] = (LOG_KEY,), event_name: str = "ObjectCreated:Put") -> Dict[str, Any]:
    """An S3 event notification as S3 sends it (eventVersion 2.1, every field)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-23T12:00:00.000Z",
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:AROAJ6CFMA2LEXAMPLE:regionalDeliverySession"},
                "requestParameters": {"sourceIPAddress": "10.0.113.45"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRj"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "cloudtrail-to-sqs",
                    "bucket": {
                        "name": BUCKET,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKEXAMPLE"},
                        "arn": f"arn:aws:s3:::{BUCKET}",
                    },
                    "object": {
                        "key": key,
                        "size": 1024,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
            for key in keys
        ]
    }


def s3_two_records_payload() -> Dict[str, Any]:
    """A create and a delete in one message."""
    payload = s3_event_payload((LOG_KEY, LOG_KEY_2))
    payload["Records"][1]["eventName"] = "ObjectRemoved:Delete"
    return payload


def cloudtrail_sns_payload() -> Dict[str, Any]:
    """CloudTrail's own SNS message (keys not URL-encoded)."""
    return {"s3Bucket": BUCKET, "s3ObjectKey": [LOG_KEY, LOG_KEY_2]}


def eventbridge_payload() -> Dict[str, Any]:
    """S3's EventBridge "Object Created" event, as an SQS target receives it."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": LOG_KEY,
                "size": 1024,
                "etag": "d41d8cd98f00b204e9800998ecf8427e",
                "version-id": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                "sequencer": "0055AED6DCD90281E5",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "cloudtrail.amazonaws.com",
            "source-ip-address": "cloudtrail.amazonaws.com",
            "reason": "PutObject",
        },
    }


def s3_test_event_payload() -> Dict[str, Any]:
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-23T12:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }


def sns_envelope(message: Any, message_type: Any = "Notification") -> Dict[str, Any]:
    """An SNS envelope as SNS delivers it to SQS (non-raw delivery)."""
    return {
        "Type": message_type,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC_ARN,
        "Subject": "Amazon S3 Notification",
        "Message": message,
        "Timestamp": "2026-11-23T12:00:00.000Z",
        "SignatureVersion": "2",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxY",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC_ARN}:c9135db0",
    }


SHAPES: Tuple[Tuple[str, Callable[[], Dict[str, Any]]], ...] = (
    ("s3", s3_event_payload),
    ("s3_two_records", s3_two_records_payload),
    ("cloudtrail_sns", cloudtrail_sns_payload),
    ("eventbridge", eventbridge_payload),
    ("s3_test_event", s3_test_event_payload),
)
WRAPPINGS = ("raw", "sns")
DELETE = object()  # a replacement that removes the field
# A value of every JSON type, and strings that are empty, long, hostile (XML, controls, line separators),
# a lone surrogate, and structures nested one level.
REPLACEMENTS: Tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    10**30,
    "",
    "x",
    "y" * 100,
    "ü\u2028\x00<&>\"'\n",
    "\ud800",
    [],
    [None],
    {},
    {"a": {"b": []}},
    DELETE,
)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _wrap(payload_text: str, wrapping: str, rng: Optional[random.Random] = None) -> str:
    """The body SQS holds: the payload itself, or an SNS envelope around it (pretty-printed as SNS does)."""
    if wrapping == "raw":
        return payload_text
    pretty = rng is None or rng.random() < 0.5
    envelope = sns_envelope(payload_text)
    return json.dumps(envelope, indent=2, sort_keys=True) if pretty else _compact(envelope)


def json_paths(value: Any, prefix: Tuple[Any, ...] = ()) -> Iterator[Tuple[Any, ...]]:
    """Every path to a value inside ``value`` (itself included), depth first."""
    yield prefix
    if isinstance(value, dict):
        for name, child in value.items():
            yield from json_paths(child, (*prefix, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from json_paths(child, (*prefix, index))


def replaced(value: Any, path: Tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with the value at ``path`` replaced by ``new`` (or removed, for DELETE)."""
    if not path:
        return new
    changed = copy.deepcopy(value)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    if new is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(new)
    return changed


@functools.lru_cache(maxsize=1)
def _wrong_type_plan() -> List[Tuple[str, str, str, Tuple[Any, ...], int]]:
    """(shape, wrapping, part, path, replacement index) for every field of every shape: the payload's
    fields, raw and inside an SNS envelope, and the envelope's own fields."""
    plan = []
    for shape, make in SHAPES:
        payload = make()
        for wrapping in WRAPPINGS:
            for path in json_paths(payload):
                for number, new in enumerate(REPLACEMENTS):
                    if path or new is not DELETE:
                        plan.append((shape, wrapping, "payload", path, number))
    envelope = sns_envelope("{}")
    for path in json_paths(envelope):
        if path:
            for number in range(len(REPLACEMENTS)):
                plan.append(("s3", "sns", "envelope", path, number))
    return plan


def wrong_type_case_count() -> int:
    return len(_wrong_type_plan())


def _wrong_type_body(seed: int) -> str:
    shape, wrapping, part, path, number = _wrong_type_plan()[seed]
    payload = dict(SHAPES)[shape]()
    new = REPLACEMENTS[number]
    if part == "envelope":
        return json.dumps(replaced(sns_envelope(_compact(payload)), path, new))
    return _wrap(_compact(replaced(payload, path, new)), wrapping)


# Keys that matter to notification parsers, so that random objects sometimes come close to a real shape.
NOTIFICATION_FIELD_NAMES = (
    "Records",
    "eventSource",
    "eventVersion",
    "eventName",
    "s3",
    "bucket",
    "name",
    "object",
    "key",
    "size",
    "Type",
    "TopicArn",
    "Message",
    "s3Bucket",
    "s3ObjectKey",
    "detail-type",
    "source",
    "detail",
    "Service",
    "Event",
)
_TEXT_PIECES = (
    "a",
    "Records",
    "aws:s3",
    "2.1",
    "ObjectCreated:Put",
    "aws.s3",
    "Object Created",
    "Notification",
    "é",
    "日本",
    "😀",
    "\u2028",
    "\x00",
    "\x1b",
    "\n",
    "\ud800",
    "\udfff",
    "\ufffe",
    "<&>",
    '"',
    "\\",
    " ",
)


def random_text(rng: random.Random, max_pieces: int = 6) -> str:
    return "".join(rng.choice(_TEXT_PIECES) for _ in range(rng.randint(0, max_pieces)))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of any type (NaN and infinities included, as Python's json accepts them)."""
    kind = rng.randrange(9 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice((0, -1, 2**63, -(2**64), 10 ** rng.randint(1, 300), rng.randint(-1000, 1000)))
    if kind == 3:
        return rng.choice((0.5, -0.0, 1e308, 5e-324, float("nan"), float("inf"), float("-inf"), rng.random()))
    if kind in (4, 5, 6):
        return random_text(rng)
    if kind == 7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        (rng.choice(NOTIFICATION_FIELD_NAMES) if rng.random() < 0.6 else random_text(rng)): random_json(rng, depth + 1)
        for _ in range(rng.randint(0, 5))
    }


def _random_dumps(rng: random.Random, value: Any) -> str:
    return json.dumps(
        value,
        ensure_ascii=rng.random() < 0.5,
        indent=rng.choice((None, None, 0, 2)),
        separators=rng.choice(((",", ":"), (", ", ": "), None)),
    )


def _valid_body(rng: random.Random) -> str:
    _, make = rng.choice(SHAPES)
    return _wrap(_compact(make()), rng.choice(WRAPPINGS), rng)


def _deep(rng: random.Random, levels: int) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return "[" * levels + "]" * levels
    if kind == 1:
        return '{"a":' * levels + "1" + "}" * levels
    if kind == 2:
        return '[{"Records":' * (levels // 2) + "null" + "}]" * (levels // 2)
    return "[" * levels  # never closed


def _deep_body(rng: random.Random) -> str:
    levels = rng.randint(DEEP_LEVELS, 3 * DEEP_LEVELS)
    inner = _deep(rng, levels)
    place = rng.randrange(6)
    if place == 0:
        return inner
    if place == 1:
        return '{"Records":' + inner + "}"
    if place == 2:
        record = _compact(s3_event_payload()["Records"][0])
        return '{"Records":[' + record[:-1] + ',"s3x":' + inner + "}]}"
    if place == 3:
        return _compact(sns_envelope(inner))
    if place == 4:
        return _compact(sns_envelope('{"Records":' + inner + "}"))
    return '{"detail-type":"Object Created","source":"aws.s3","detail":' + inner + "}"


def _huge_body(rng: random.Random) -> str:
    size = rng.randint(HUGE_BODY_CHARS, 2 * HUGE_BODY_CHARS)
    filler = rng.choice(("x", "日", "😀", "\\u0041", "\ud800", "<&>", " "))
    text = (filler * (size // len(filler) + 1))[:size]
    kind = rng.randrange(12)
    if kind == 0:
        return text
    if kind == 1:
        return json.dumps(text)
    if kind == 2:
        return json.dumps({"Records": text})
    if kind == 3:
        return json.dumps({text: 1, "more": 2})
    if kind == 4:
        payload = s3_event_payload()
        payload["Records"][0]["eventSource"] = "aws:s3" + text
        return json.dumps(payload)
    if kind == 5:
        keys = [f"{LOG_KEY}.{number}" for number in range(size // 400)]
        return _compact(s3_event_payload(keys))  # valid: thousands of objects
    if kind == 6:
        return _compact(sns_envelope(text))
    if kind == 7:
        return " " * size + "{}"
    if kind == 8:
        return "-" + "7" * size  # a number far longer than int() accepts
    if kind == 9:
        return _compact({"Records": [None] * (size // 5)})
    if kind == 10:
        payload = s3_event_payload()
        payload["Records"][0]["s3"]["bucket"]["name"] = "b" * size
        return _compact(payload)
    return _compact({f"k{number}": number for number in range(size // 12)})


def _invalid_unicode_body(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
        return raw.decode("utf-8", errors="surrogateescape")
    if kind == 1:
        raw = bytearray(_valid_body(rng).encode("utf-8"))
        for _ in range(rng.randint(1, 5)):
            raw.insert(rng.randrange(len(raw) + 1), rng.randrange(0x80, 0x100))
        return bytes(raw).decode("utf-8", errors="surrogateescape")
    if kind == 2:
        body = _valid_body(rng)
        at = rng.randrange(len(body) + 1)
        return body[:at] + chr(rng.randrange(0xD800, 0xE000)) + body[at:]
    # a surrogate escape in a field that names the object
    payload = rng.choice((s3_event_payload(), cloudtrail_sns_payload(), eventbridge_payload()))
    paths = [p for p in json_paths(payload) if p and p[-1] in ("key", "name", "s3Bucket", 0)]
    path = rng.choice(paths)
    surrogate = chr(rng.randrange(0xD800, 0xE000))
    return _wrap(json.dumps(replaced(payload, path, "AWSLogs/" + surrogate)), rng.choice(WRAPPINGS), rng)


def _sns_message_body(rng: random.Random) -> str:
    choices: List[Any] = [
        random_text(rng, 12),
        "",
        " ",
        "null",
        "[]",
        "123",
        '"text"',
        "{",
        _compact(s3_event_payload())[: rng.randint(1, 200)],
        json.dumps(sns_envelope(_compact(s3_event_payload()))),
        json.dumps(sns_envelope(json.dumps(sns_envelope(_compact(cloudtrail_sns_payload()))))),
        _deep(rng, DEEP_LEVELS),
        "x" * HUGE_BODY_CHARS,
        _compact(random_json(rng)),
        "\ud800",
        "\x00",
        None,
        123,
        [],
        {"Records": []},
        DELETE,
    ]
    message = rng.choice(choices)
    message_type = rng.choice(
        ("Notification",) * 6 + ("SubscriptionConfirmation", "UnsubscribeConfirmation", "", None, 7, ["Notification"])
    )
    envelope = sns_envelope(_compact(s3_event_payload()), message_type)
    if message is DELETE:
        del envelope["Message"]
    else:
        envelope["Message"] = message
    if rng.random() < 0.1:
        envelope["TopicArn"] = random_json(rng)
    return _random_dumps(rng, envelope)


_CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff"]


def _control_body(rng: random.Random) -> str:
    body = _valid_body(rng)
    if rng.random() < 0.3:
        return rng.choice(("\ufeff", "\x00", " \t\r\n")) + body
    chars = list(body)
    for _ in range(rng.randint(1, 4)):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(_CONTROLS))
    return "".join(chars)


_LOOKALIKES = {"e": "е", "o": "о", "a": "а", "c": "с", "s": "ѕ", "i": "і"}  # Cyrillic letters


def _non_ascii_key_body(rng: random.Random) -> str:
    _, make = rng.choice(SHAPES)
    payload = make()
    named = [p for p in json_paths(payload) if p and isinstance(p[-1], str)]
    path = rng.choice(named)
    old = path[-1]
    kind = rng.randrange(4)
    if kind == 0:
        new_key = "".join(_LOOKALIKES.get(char, char) for char in old)
    elif kind == 1:
        new_key = old.upper() if rng.random() < 0.5 else "Ｒｅｃｏｒｄｓ"
    elif kind == 2:
        new_key = random_text(rng) or "ключ"
    else:
        new_key = old + "\u0301"  # a combining accent
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    parent[new_key] = parent.pop(old)
    if rng.random() < 0.3:
        payload["ключ😀"] = random_json(rng)
    return _wrap(json.dumps(payload, ensure_ascii=rng.random() < 0.5), rng.choice(WRAPPINGS), rng)


def _truncated_body(rng: random.Random) -> str:
    body = _valid_body(rng)
    return body[: rng.randrange(len(body))]


def _mutated_body(rng: random.Random) -> str:
    chars = list(_valid_body(rng))
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(chars))
        action = rng.randrange(3)
        if action == 0:
            del chars[at]
        elif action == 1:
            chars.insert(at, rng.choice('{}[]",:0-. \\e' + "aé\x00"))
        else:
            chars[at] = rng.choice('{}[]",:0tfn')
    return "".join(chars)


BODY_FAMILIES: Dict[str, Callable[[random.Random], str]] = {
    "random_json": lambda rng: _random_dumps(rng, random_json(rng)),
    "huge": _huge_body,
    "deep": _deep_body,
    "invalid_unicode": _invalid_unicode_body,
    "sns_message": _sns_message_body,
    "control_chars": _control_body,
    "non_ascii_keys": _non_ascii_key_body,
    "truncated": _truncated_body,
    "mutated": _mutated_body,
}


def body_case(family: str, seed: int) -> BodyCase:
    """Body case ``seed`` of ``family`` ("wrong_types" enumerates every field of every shape: seed < its count)."""
    if family == "wrong_types":
        return BodyCase(family, seed, _wrong_type_body(seed))
    return BodyCase(family, seed, BODY_FAMILIES[family](random.Random(f"{family}:{seed}")))


def integration_bad_bodies() -> List[BodyCase]:
    """Bodies no notification parser may accept, each with the phrase the add-on's reason contains. Every
    character is one SQS accepts (no C0 controls but tab, LF and CR, no surrogates), under 1 MiB."""
    s3 = s3_event_payload()
    record = s3["Records"][0]

    def s3_with(path: Tuple[Any, ...], value: Any) -> str:
        return _compact(replaced(s3, ("Records", 0, *path), value))

    def sns(message: Any) -> str:
        return json.dumps(sns_envelope(message), indent=2, sort_keys=True)

    deep_array = "[" * DEEP_LEVELS + "]" * DEEP_LEVELS
    cases = [
        ("this is not JSON at all", "The message body is not valid JSON (Expecting value"),
        (" ", "The message body is not valid JSON"),
        ("<Notification><Records/></Notification>", "The message body is not valid JSON"),
        ('{"Records": []} trailing', "The message body is not valid JSON (Extra data"),
        ("[]", "The message body is a list instead of a JSON object"),
        ("42", "The message body is a number instead of a JSON object"),
        ('"a string"', "The message body is a string instead of a JSON object"),
        ("null", "The message body is null instead of a JSON object"),
        ("true", "The message body is a boolean instead of a JSON object"),
        ("{}", "is not an S3, SNS, EventBridge or CloudTrail notification (it has no fields)"),
        ('{"Records": "not a list"}', "The S3 notification has 'not a list' as Records instead of a list"),
        ('{"Records": []}', "The S3 notification has an empty Records list"),
        ('{"Records": [null]}', "S3 record 1 is null instead of an object"),
        (s3_with(("eventSource",), 7), "S3 record 1 has a number as eventSource instead of 'aws:s3'"),
        (s3_with(("eventVersion",), "1.0"), "S3 record 1 has '1.0' as eventVersion instead of a 2.x version"),
        (s3_with(("eventName",), DELETE), "S3 record 1 has no eventName; expected a string"),
        (s3_with(("s3",), []), "S3 record 1 has a list as s3 instead of an object"),
        (s3_with(("s3", "bucket", "name"), "bad/bucket"), "as s3.bucket.name instead of an S3 bucket name"),
        (s3_with(("s3", "bucket", "name"), "bücket"), "as s3.bucket.name instead of an S3 bucket name"),
        (s3_with(("s3", "object", "key"), ""), "has '' as s3.object.key instead of a non-empty object key"),
        (
            _compact(s3).replace(LOG_KEY, "AWSLogs/\\ud800"),  # a JSON escape: the body itself is valid
            "has an object key in s3.object.key that is not valid Unicode",
        ),
        (sns("this is not JSON"), "The SNS Message is not valid JSON"),
        (sns(""), "The SNS Message is not valid JSON (Expecting value"),
        (sns(json.dumps(sns_envelope(_compact(s3)))), "The SNS Message is not an S3, EventBridge or CloudTrail"),
        (json.dumps(replaced(sns_envelope("{}"), ("Message",), DELETE)), "The SNS message has no Message"),
        (json.dumps(sns_envelope(7)), "The SNS message has a number as Message instead of a string"),
        (json.dumps(sns_envelope("{}", "Bogus")), "The SNS message has 'Bogus' as Type instead of 'Notification'"),
        (
            _compact({"s3Bucket": BUCKET, "s3ObjectKey": LOG_KEY}),
            "as s3ObjectKey instead of a list of object keys",
        ),
        (_compact({"s3Bucket": BUCKET, "s3ObjectKey": []}), "The CloudTrail notification has an empty s3ObjectKey"),
        (_compact({"s3ObjectKey": [LOG_KEY]}), "The CloudTrail notification has no s3Bucket"),
        (
            _compact({"s3Bucket": BUCKET, "s3ObjectKey": [123]}),
            "has a number as s3ObjectKey[0] instead of a non-empty object key",
        ),
        (
            _compact(replaced(eventbridge_payload(), ("source",), "aws.ec2")),
            "The EventBridge event has 'aws.ec2' as source instead of 'aws.s3'",
        ),
        (
            _compact(replaced(eventbridge_payload(), ("detail-type",), 5)),
            "The EventBridge event has a number as detail-type instead of a string",
        ),
        (
            _compact(replaced(eventbridge_payload(), ("detail", "bucket"), DELETE)),
            "The EventBridge event has no detail.bucket; expected an object",
        ),
        (deep_array, "The message body is nested too deeply"),
        ('{"Records":' + deep_array + "}", "The message body is nested too deeply"),
        (_compact(sns_envelope(deep_array)), "The SNS Message is nested too deeply"),
        (_compact({"Records": "x" * 1_000_000}), "as Records instead of a list"),
        ("A" * 1_000_000, "The message body is not valid JSON"),
        ("9" * 5000, "The message body holds a number too long to read"),
        (_compact({"Rеcords": record}), "(its fields: 'R\\u0435cords')"),  # Cyrillic е
        ('{"Records": "raw\ttab"}', "The message body is not valid JSON (Invalid control character"),
        ('{"Records":\r\n "line\rbreaks"}', "The message body is not valid JSON (Invalid control character"),
        ('{"Records": "x\u2028y\u0085z"}', "has 'x\\u2028y\\x85z' as Records instead of a list"),
        (_compact({"Service": "Amazon S3", "Event": "s3:Other"}), "(its fields: 'Service', 'Event')"),
    ]
    return [BodyCase("integration", number, body, reason) for number, (body, reason) in enumerate(cases)]


# --- CloudTrail objects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Element:
    """One element of a Records array: its exact bytes and what a JSON reader makes of them (UTF-8, invalid
    bytes read as U+FFFD, raw control characters in strings allowed)."""

    text: bytes
    value: Any

    @property
    def is_record(self) -> bool:
        return type(self.value) is dict


def element(text: bytes) -> Element:
    return Element(text, json.loads(text.decode("utf-8", "replace"), strict=False))


@dataclass(frozen=True)
class Document:
    """An uncompressed CloudTrail document and where each of its elements lies in it."""

    data: bytes
    elements: Tuple[Element, ...]
    ends: Tuple[int, ...]  # byte offset just after each element

    def complete_before(self, offset: int) -> int:
        """How many elements lie wholly in ``data[:offset]``."""
        return sum(1 for end in self.ends if end <= offset)

    def starts(self) -> List[int]:
        return [end - len(e.text) for end, e in zip(self.ends, self.elements)]


@dataclass(frozen=True)
class ObjectCase:
    family: str
    seed: int
    data: bytes  # the object's bytes, as stored in S3
    elements: Tuple[Element, ...]  # the elements of the undamaged document, in order
    complete: int  # elements complete before the damage (all of them for an intact object)
    error: Optional[str]  # None: must be read whole; "format" or "too_large": must fail so
    phrase: str  # what the error message must contain ("" when several messages are right)
    cap: int  # the decompressed-size cap
    # Damage inside compressed data that still decompresses: after the `complete` elements the reader may
    # yield altered ones before the gzip check fails (a stream cannot know earlier); their count is unknown.
    garbled: bool = False


NO_CAP = 1 << 40
_UTF8_BOM = b"\xef\xbb\xbf"
_CONTROL_BYTES = [bytes([c]) for c in range(0x20) if c not in (0x22, 0x5C)]
_BAD_UTF8 = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80\x80", b"\xe6\x97")
_MARK_RAW = "RAWCTRLMARK"
_MARK_BAD = "BADUTF8MARK"


@functools.lru_cache(maxsize=1)
def _record_pool() -> Tuple[Dict[str, Any], ...]:
    return tuple(make_records(300, seed=4242, hostile_user_agent_rate=0.3))


_HOSTILE_PIECES = (*_TEXT_PIECES, "]]>", "&amp;", "\t", "\r", "\x7f", "\U0010ffff")


def hostile_text(rng: random.Random, pieces: int = 6) -> str:
    """Text with XML specials, non-ASCII (astral too), line separators, controls and lone surrogates."""
    return "".join(rng.choice(_HOSTILE_PIECES) for _ in range(pieces))


def _dumps_bytes(value: Any, form: str) -> bytes:
    if form == "ascii":
        return json.dumps(value, separators=(",", ":")).encode("ascii")
    if form == "pretty":
        text = json.dumps(value, indent=2, ensure_ascii=False)
    elif form == "spaced":
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # A lone surrogate becomes the invalid UTF-8 a careless writer would produce.
    return text.encode("utf-8", "surrogatepass")


def record_element(rng: random.Random, *, hostile: bool = True, large: bool = False) -> Element:
    """A CloudTrail record, sometimes with hostile text, raw controls or invalid UTF-8, in some JSON layout."""
    record = dict(rng.choice(_record_pool()))
    record["fuzzNumbers"] = [rng.randint(-(10**6), 10**6), rng.choice((0.5, -6.25e-3, 1e10, 123456789012345678))]
    if hostile and rng.random() < 0.6:
        record["fuzzNote"] = hostile_text(rng)
    if hostile and rng.random() < 0.2:
        record[rng.choice(("ключ😀", "<&>", "k\u2028ey", "\ud83d"))] = rng.choice((None, True, [], {}, "v"))
    if hostile and rng.random() < 0.15:
        record["fuzzRaw"] = f"a{_MARK_RAW}b"
    if hostile and rng.random() < 0.1:
        record["fuzzBad"] = f"a{_MARK_BAD}b"
    if large:
        unit = rng.choice(("x", "é", "日本", "<&>", "😀", "\\"))
        record["fuzzLarge"] = unit * (256 * 1024 // len(unit.encode("utf-8")))
    forms = ("compact",) * 6 + ("ascii", "pretty", "spaced")
    text = _dumps_bytes(record, rng.choice(forms))
    if _MARK_RAW in record.get("fuzzRaw", ""):
        text = text.replace(_MARK_RAW.encode(), b"".join(rng.choice(_CONTROL_BYTES) for _ in range(3)))
    if _MARK_BAD in record.get("fuzzBad", ""):
        text = text.replace(_MARK_BAD.encode(), rng.choice(_BAD_UTF8))
    return element(text)


# Elements that are not records; a reader yields them and the input counts and skips them. No bare number:
# a number cut by the end of a truncated object cannot be told from a complete one.
NON_RECORDS = (
    b"null",
    b'"just a string"',
    b'"\xc3\xa9 \\u0000 <&> \\ud800"',
    b"true",
    b"false",
    b"[]",
    b"[1,[2,[3,[4]]]]",
    b'[{"eventTime":"2021-01-01T00:00:00Z"}]',
    b"[" * 300 + b"]" * 300,
    b'""',
)


def odd_element(rng: random.Random) -> Element:
    return element(rng.choice(NON_RECORDS))


_LAYOUTS = {
    # name: (prefix, separator, suffix)
    "compact": (b'{"Records":[', b",", b"]}"),
    "spaced": (b'{"Records": [', b", ", b"]}"),
    "pretty": (b'{\n  "Records" : [\n    ', b",\n    ", b"\n  ]\n}\n"),
    "array": (b"[", b",", b"]"),
    "keys_before": (b'{"other":{"x":[1,"]"],"Records":null},"Records":[', b",", b"]}"),
    "keys_after": (b'{"Records":[', b",", b'],"trailer":["x",{"y":"}"}]}'),
    "bom": (b'\xef\xbb\xbf{"Records":[', b",", b"]}"),
    "tabs": (b'\t{\r\n"Records"\t:\r\n[\t', b"\t,\r\n", b"\r\n]\t}\r\n"),
}


def build_document(elements: Sequence[Element], layout: str = "compact") -> Document:
    prefix, separator, suffix = _LAYOUTS[layout]
    parts = [prefix]
    ends = []
    offset = len(prefix)
    for number, item in enumerate(elements):
        if number:
            parts.append(separator)
            offset += len(separator)
        parts.append(item.text)
        offset += len(item.text)
        ends.append(offset)
    parts.append(suffix)
    return Document(b"".join(parts), tuple(elements), tuple(ends))


def gzip_member(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def gunzip_prefix_length(data: bytes, size: int) -> int:
    """How many decompressed bytes ``data[:size]`` (one or more gzip members) gives: output that no damage
    at or after byte ``size`` can change."""
    total = 0
    rest = data[:size]
    while rest:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            total += len(decompressor.decompress(rest))
        except zlib.error:
            return total
        if not decompressor.eof:
            return total
        rest = decompressor.unused_data.lstrip(b"\0")
    return total


def gunzip_all(data: bytes) -> Optional[bytes]:
    """The decompressed bytes if ``data`` is entirely valid gzip (members and NUL padding), else None."""
    output = []
    rest = data
    while rest:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            output.append(decompressor.decompress(rest))
        except zlib.error:
            return None
        if not decompressor.eof:
            return None
        rest = decompressor.unused_data.lstrip(b"\0")
    return b"".join(output)


def _elements(rng: random.Random, count: int, *, odd: float = 0.0, large: int = 0) -> List[Element]:
    items = [odd_element(rng) if rng.random() < odd else record_element(rng) for _ in range(count)]
    for _ in range(large):
        items.insert(rng.randrange(len(items) + 1), record_element(rng, large=True))
    return items


def _document(rng: random.Random, *, count: Optional[int] = None, odd: float = 0.0, large: int = 0) -> Document:
    n = rng.randint(1, 25) if count is None else count
    return build_document(_elements(rng, n, odd=odd, large=large), rng.choice(list(_LAYOUTS)))


def _maybe_gzip(rng: random.Random, data: bytes) -> bytes:
    return gzip_member(data, rng.choice((0, 1, 6, 9))) if rng.random() < 0.6 else data


def _case(
    family: str,
    seed: int,
    data: bytes,
    doc: Document,
    complete: int,
    error: Optional[str],
    phrase: str = "",
    cap: int = NO_CAP,
    garbled: bool = False,
) -> ObjectCase:
    return ObjectCase(family, seed, data, doc.elements, complete, error, phrase, cap, garbled)


def _intact(rng: random.Random, seed: int) -> ObjectCase:
    doc = _document(rng, odd=rng.choice((0.0, 0.0, 0.2)))
    return _case("intact", seed, _maybe_gzip(rng, doc.data), doc, len(doc.elements), None)


_NUMBER = re.compile(rb"[-0-9][0-9.eE+-]*")
_LITERAL = re.compile(rb"null|true|false")


def _cut_position(rng: random.Random, doc: Document) -> int:
    """A position to cut at: inside a string, a number, a literal, an escape or a UTF-8 character, between
    elements, after the array, or anywhere."""
    starts = doc.starts()
    number = rng.randrange(len(doc.elements))
    start, end = starts[number], doc.ends[number]
    text = doc.data[start:end]
    kind = rng.randrange(9)
    inside: List[int] = []
    if kind == 0:
        inside = [i + 1 for i, byte in enumerate(text) if byte == 0x22]  # just after a quote
    elif kind == 1:
        inside = [m.start() + rng.randrange(1, len(m.group()) + 1) for m in _NUMBER.finditer(text)]
    elif kind == 2:
        inside = [m.start() + rng.randrange(1, 4) for m in _LITERAL.finditer(text)]
    elif kind == 3:
        inside = [i + rng.randrange(1, 6) for i in range(len(text)) if text[i : i + 2] == b"\\u"]
    elif kind == 4:
        inside = [i for i, byte in enumerate(text) if 0x80 <= byte < 0xC0]  # inside a UTF-8 sequence
    elif kind == 5:
        return end + rng.randrange(0, 3)  # at the end of an element, on or after its separator
    elif kind == 6:
        return doc.ends[-1] + rng.randrange(0, 3)  # the array's end
    elif kind == 7:
        return start
    if inside:
        return start + min(rng.choice(inside), len(text) - 1)
    return rng.randrange(len(doc.data))


def _cut_before_the_end(rng: random.Random, doc: Document) -> int:
    """A cut position (see _cut_position) that leaves out at least the document's closing bracket."""
    closing = len(doc.data.rstrip(b" \t\r\n")) - 1
    return min(_cut_position(rng, doc), closing)


def _truncated_json(rng: random.Random, seed: int) -> ObjectCase:
    doc = _document(rng, odd=rng.choice((0.0, 0.2)), large=1 if rng.random() < 0.05 else 0)
    cut = _cut_before_the_end(rng, doc)
    kept = doc.data[:cut]
    rest = kept[len(_UTF8_BOM) :] if kept.startswith(_UTF8_BOM) else kept
    phrase = "empty" if not rest.strip(b" \t\r\n") else ""
    return _case("truncated_json", seed, _maybe_gzip(rng, kept), doc, doc.complete_before(cut), "format", phrase)


# Invalid text that a JSON reader must reject where it stands (never a prefix of valid JSON).
_BAD_SEPARATORS = (b"x", b";", b"}", b",,", b"]]", b":", b"\x00", b"\x01", b"", b" ", b"/**/,", b"'")
_BAD_INSIDE = (
    b",",
    b"]",
    b"1:",
    b"'a':1,",
    b'"k" 1,',
    b'"k":undefined,',
    b'"k":"\\q",',
    b'"k":"\\u12G4",',
    b'"k":01,',
    b'"k":--1,',
    b'"k":[1,,2],',
    b'"k":.5,',
    b'"k":+1,',
    b'"k":tru,',
    b'"k":\x01,',
    b'"k":{"a" "b"},',
    b'"k":[' * 100_000 + b"]" * 100_000 + b",",
)


def _damaged_json(rng: random.Random, seed: int) -> ObjectCase:
    doc = _document(rng, count=rng.randint(1, 20), odd=rng.choice((0.0, 0.2)))
    starts = doc.starts()
    records = [i for i, item in enumerate(doc.elements) if item.text.startswith(b"{")]
    if records and rng.random() < 0.5:
        number = rng.choice(records)
        fragment = rng.choice(_BAD_INSIDE)
        at = starts[number] + 1
        data = doc.data[:at] + fragment + doc.data[at:]
        phrase = "nested too deeply" if fragment.startswith(b'"k":[[') else "not valid JSON"
        return _case("damaged_json", seed, _maybe_gzip(rng, data), doc, number, "format", phrase)
    number = rng.randrange(len(doc.elements))  # the damage follows this element
    nxt = starts[number + 1] if number + 1 < len(doc.elements) else None
    fragment = rng.choice(_BAD_SEPARATORS)
    if nxt is None:
        # after the last element: a trailing comma, or garbage before the "]"
        fragment = rng.choice((b",", b", ", b"x", b"}"))
        data = doc.data[: doc.ends[number]] + fragment + doc.data[doc.ends[number] :]
    else:
        if fragment in (b"", b" "):
            fragment = b"x"  # a missing separator is only invalid if something else takes its place
        data = doc.data[: doc.ends[number]] + fragment + doc.data[nxt:]
    return _case("damaged_json", seed, _maybe_gzip(rng, data), doc, number + 1, "format", "not valid JSON")


_NOT_ARRAYS = (b"1", b"-2.5e3", b'"a string"', b'{"a":[1,2]}', b"null", b"true", b"false", b'"[]"')


def _records_not_list(rng: random.Random, seed: int) -> ObjectCase:
    value = rng.choice(_NOT_ARRAYS)
    before = rng.choice((b"", b'"eventVersion":"1.08",', b'"x":[{"Records":[]}],'))
    after = rng.choice((b"", b',"more":[1,2,3]', b',"Records":[{"eventTime":"2021-01-01T00:00:00Z"}]'))
    data = b"{" + before + b'"Records":' + value + after + b"}"
    doc = Document(data, (), ())
    return _case("records_not_list", seed, _maybe_gzip(rng, data), doc, 0, "format", '"Records" value is not an array')


def _odd_elements(rng: random.Random, seed: int) -> ObjectCase:
    doc = _document(rng, odd=rng.choice((0.3, 0.7, 1.0)))
    return _case("odd_elements", seed, _maybe_gzip(rng, doc.data), doc, len(doc.elements), None)


def _empty(rng: random.Random, seed: int) -> ObjectCase:
    empty_doc = Document(b"", (), ())
    kind = rng.randrange(10)
    data = (
        b"",
        b"   \r\n\t",
        b"\xef\xbb\xbf",
        b"\xef\xbb\xbf  ",
        gzip_member(b""),
        gzip_member(b" \n "),
        gzip_member(b"") * 3,
        gzip_member(b"") + b"\0" * rng.randint(1, 100),
        gzip_member(b"\xef\xbb\xbf"),
        gzip_member(b"", 0) + gzip_member(b"  ", 9),
    )[kind]
    return _case("empty", seed, data, empty_doc, 0, "format", "empty")


def _not_json(rng: random.Random, seed: int) -> ObjectCase:
    doc = Document(b"", (), ())
    kind = rng.randrange(7)
    if kind == 0:
        first = rng.choice([bytes([c]) for c in range(256) if c not in b" \t\r\n{[\x1f\xef"])
        data = first + bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        return _case("not_json", seed, data, doc, 0, "format", "")
    if kind == 1:
        data = rng.choice((b'"a string"', b"123", b"null", b"true", b"-1", b"<?xml version='1.0'?><a/>", b"a,b\n1,2"))
        return _case("not_json", seed, _maybe_gzip(rng, data), doc, 0, "format", "not JSON")
    if kind == 2:
        return _case("not_json", seed, _maybe_gzip(rng, b"\0" * rng.randint(1, 50)), doc, 0, "format", "")
    # a valid document followed by more: trailing data, or a second document
    full = _document(rng, count=rng.randint(1, 8))
    tail = rng.choice((b"x", b" garbage", b'{"Records":[]}', b"[]", b"\x00", b",", b"]"))
    return _case("not_json", seed, _maybe_gzip(rng, full.data + tail), full, len(full.elements), "format", "")


def _corrupt_gzip(rng: random.Random, seed: int) -> ObjectCase:
    doc = _document(rng, large=1 if rng.random() < 0.03 else 0)
    packed = gzip_member(doc.data, rng.choice((1, 6, 9, 0)))
    region = rng.randrange(5)
    if region == 0:
        at = rng.randrange(10)  # header
    elif region == 1:
        at = len(packed) - rng.randrange(1, 9)  # CRC32 and ISIZE trailer
    else:
        at = rng.randrange(10, len(packed) - 8)  # deflate data
    corrupt = bytearray(packed)
    corrupt[at] ^= rng.randrange(1, 256)
    corrupt_bytes = bytes(corrupt)
    if gunzip_all(corrupt_bytes) == doc.data:
        # a byte gzip does not check (mtime, XFL, OS, the FTEXT flag, padding bits): still the same object
        return _case("corrupt_gzip", seed, corrupt_bytes, doc, len(doc.elements), None)
    safe = gunzip_prefix_length(packed, at) if at >= 2 else 0
    complete = doc.complete_before(safe)
    # damage in the trailer comes after all the output: nothing can be garbled
    garbled = complete < len(doc.elements)
    return _case("corrupt_gzip", seed, corrupt_bytes, doc, complete, "format", "", garbled=garbled)


def _truncated_gzip(rng: random.Random, seed: int) -> ObjectCase:
    doc = _document(rng, large=1 if rng.random() < 0.03 else 0)
    packed = gzip_member(doc.data, rng.choice((1, 6, 9, 0)))
    region = rng.randrange(6)
    if region == 0:
        cut = rng.randrange(11)
    elif region == 1:
        cut = len(packed) - rng.randrange(1, 9)
    else:
        cut = rng.randrange(10, len(packed))
    complete = doc.complete_before(gunzip_prefix_length(packed, cut))
    phrase = {0: "empty", 1: "not JSON"}.get(cut, "gzip data ends early")
    return _case("truncated_gzip", seed, packed[:cut], doc, complete, "format", phrase)


def _split_members(rng: random.Random, data: bytes, count: int) -> List[bytes]:
    offsets = sorted(rng.sample(range(1, len(data)), min(count - 1, len(data) - 1))) if len(data) > 1 else []
    bounds = [0, *offsets, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def _multi_member(rng: random.Random, seed: int) -> ObjectCase:
    doc = _document(rng)
    parts = _split_members(rng, doc.data, rng.randint(2, 6))
    members = [gzip_member(part, rng.choice((0, 1, 6, 9))) for part in parts]
    padding = [b"\0" * rng.choice((0, 0, 1, 7)) for _ in members]
    kind = rng.randrange(4)
    if kind <= 1:
        data = b"".join(m + p for m, p in zip(members, padding))
        return _case("multi_member", seed, data, doc, len(doc.elements), None)
    damaged = rng.randrange(len(members))
    good = b"".join(m + p for m, p in zip(members[:damaged], padding[:damaged]))
    before = len(b"".join(parts[:damaged]))
    if kind == 2:  # the damaged member is cut short
        cut = rng.randrange(len(members[damaged]))
        data = good + members[damaged][:cut]
        complete = doc.complete_before(before + gunzip_prefix_length(members[damaged], cut))
        if cut == 0:
            phrase = ""  # no damage left in the gzip data: the JSON is cut short (or nothing at all)
        elif damaged == 0 and cut == 1:
            phrase = "not JSON"  # one byte is no gzip magic
        else:
            phrase = "gzip data ends early"
        return _case("multi_member", seed, data, doc, complete, "format", phrase)
    # the damaged member is garbage: an invalid deflate block type right after a gzip header, or no gzip at all
    garbage = rng.choice((b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xff\xfe", b"not gzip", b"\x1f\x8b\x63"))
    data = good + garbage + b"".join(members[damaged + 1 :])
    phrase = "not JSON" if damaged == 0 and not garbage.startswith(b"\x1f\x8b") else "gzip"
    return _case("multi_member", seed, data, doc, doc.complete_before(before), "format", phrase)


@functools.lru_cache(maxsize=8)
def gzip_bomb(filler: bytes, size: int) -> bytes:
    """``size`` bytes of ``filler`` as one gzip member, compressed piecewise (never held whole in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = filler * (1 << 20)
    parts = []
    remaining = size
    while remaining:
        take = min(remaining, len(block))
        parts.append(compressor.compress(block[:take]))
        remaining -= take
    parts.append(compressor.flush())
    return b"".join(parts)


BOMB_BYTES = 64 << 20


def _bomb(rng: random.Random, seed: int) -> ObjectCase:
    """A small gzip that expands far past the cap, after some good records."""
    doc = _document(rng, count=rng.randint(0, 10), large=0)
    kind = rng.randrange(2)
    head_end = doc.ends[-1] if doc.elements else len(_LAYOUTS["compact"][0])
    if not doc.elements:
        doc = build_document([], "compact")
    separator = b"," if doc.elements else b""
    if kind == 0:  # whitespace inside the array
        head, filler = doc.data[:head_end] + separator, b" "
    else:  # one endless string in a record
        head, filler = doc.data[:head_end] + separator + b'{"eventTime":"', b"A"
    cap = rng.choice((len(head) + 1, 64 << 10, 1 << 20, 4 << 20))
    data = gzip_member(head) + gzip_bomb(filler, BOMB_BYTES)
    return _case("bomb", seed, data, doc, len(doc.elements), "too_large", "larger than the maximum", cap)


def _cap_boundary(rng: random.Random, seed: int) -> ObjectCase:
    """A cap exactly at, or just under, the document's size."""
    doc = _document(rng)
    data = _maybe_gzip(rng, doc.data)
    if rng.random() < 0.5:
        return _case("cap_boundary", seed, data, doc, len(doc.elements), None, cap=len(doc.data))
    cap = rng.randint(max(1, len(doc.data) - 40), len(doc.data) - 1)
    phrase = "larger than the maximum"
    return _case("cap_boundary", seed, data, doc, doc.complete_before(cap), "too_large", phrase, cap)


def _large_records(rng: random.Random, seed: int) -> ObjectCase:
    doc = build_document(_elements(rng, rng.randint(0, 4), large=rng.randint(1, 3)), rng.choice(list(_LAYOUTS)))
    if rng.random() < 0.5:
        return _case("large_records", seed, _maybe_gzip(rng, doc.data), doc, len(doc.elements), None)
    cut = _cut_before_the_end(rng, doc)
    return _case("large_records", seed, _maybe_gzip(rng, doc.data[:cut]), doc, doc.complete_before(cut), "format")


OBJECT_FAMILIES: Dict[str, Callable[[random.Random, int], ObjectCase]] = {
    "intact": _intact,
    "truncated_json": _truncated_json,
    "damaged_json": _damaged_json,
    "records_not_list": _records_not_list,
    "odd_elements": _odd_elements,
    "empty": _empty,
    "not_json": _not_json,
    "corrupt_gzip": _corrupt_gzip,
    "truncated_gzip": _truncated_gzip,
    "multi_member": _multi_member,
    "bomb": _bomb,
    "cap_boundary": _cap_boundary,
    "large_records": _large_records,
}


def object_case(family: str, seed: int) -> ObjectCase:
    return OBJECT_FAMILIES[family](random.Random(f"{family}:{seed}"), seed)


def chunked(rng: random.Random, data: bytes) -> List[bytes]:
    """``data`` in chunks as an HTTP body may arrive: one piece, fixed sizes from 1 byte to 1 MiB, or random
    sizes, sometimes with empty chunks between."""
    mode = rng.randrange(5)
    if mode == 0 or not data:
        chunks = [data]
    elif mode in (1, 2):
        sizes = (2, 3, 7, 64, 1000, 4096, 16383, 65535, 65536, 65537, 1 << 20)
        size = rng.choice(sizes if len(data) > 200_000 else (1, *sizes))
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
    else:
        chunks = []
        offset = 0
        smallest = 1 if len(data) < 100_000 else 64
        while offset < len(data):
            size = min(1 << 20, max(smallest, int(2 ** rng.uniform(0, 20))))
            chunks.append(data[offset : offset + size])
            offset += size
    if rng.random() < 0.2:
        for _ in range(rng.randint(1, 5)):
            chunks.insert(rng.randrange(len(chunks) + 1), b"")
    return chunks


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """What an XML 1.0 parser can give back for ``text``: characters XML cannot carry become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def hostile_source(rng: random.Random) -> str:
    """An S3 URL whose key has XML specials, non-ASCII and controls (S3 keys may hold any UTF-8)."""
    return f"s3://{BUCKET}/AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/23/{hostile_text(rng, 4)}.json.gz"
