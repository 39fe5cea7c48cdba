"""The AWS side of the test harness: a moto server over real HTTP and helpers that build the
CloudTrail -> S3 -> (S3 notification | SNS | EventBridge) -> SQS plumbing with real API calls.

Quick start::

    with MotoServer() as moto:
        env = AwsTestEnv(moto)
        bucket = env.create_bucket()
        queue = env.create_queue(visibility_timeout=5, max_receive_count=3)   # with a DLQ
        key = cloudtrail_key(when=datetime.now(timezone.utc))
        obj = env.put_cloudtrail_object(bucket, key, make_records(100, seed=1))
        env.send_s3_event(queue, [obj])                 # the body S3 would send, exactly
        messages = env.receive(queue)

Delivery paths. moto delivers these itself, synchronously, before the triggering API call returns (so tests
never need to wait for them):

- S3 -> SQS: ``configure_bucket_notifications(bucket, queue=...)`` and then any ``put_cloudtrail_object``.
  moto's body is poorer than AWS's: no versionId, no sequencer, no userIdentity, requestParameters or
  responseElements, and the key is encoded with ``quote_plus`` *including* ``/`` (``AWSLogs%2F123...``).
  AWS keeps ``/`` as is.
- s3:TestEvent: moto sends it to every configured queue and topic when the configuration is set (without
  AWS's RequestId/HostId fields).
- S3 -> SNS -> SQS and any SNS publish -> SQS: real envelope (``Type``, ``MessageId``, ``TopicArn``,
  ``Message``, ``Timestamp``, ``SignatureVersion`` always "2" (SHA256), ``Signature``, ``SigningCertURL``
  ``https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem``, ``UnsubscribeURL``), pretty
  printed with sorted keys. The signature is a real RSA signature that verifies with the certificate from
  :meth:`MotoServer.fetch_sns_signing_certificate`, **except** when the message has a ``Subject``: moto leaves
  Subject out of the string it signs, AWS puts it in, so such envelopes fail an AWS-correct check. moto's
  S3 -> SNS publish sets no Subject (AWS sets "Amazon S3 Notification").
- SNS raw delivery (``RawMessageDelivery=true``): the bare message, as AWS does.
- S3 -> EventBridge -> SQS: ``configure_bucket_notifications(bucket, eventbridge=True)`` plus
  ``route_eventbridge_to_queue``. moto's detail differs from AWS: ``eTag`` instead of ``etag``, ``reason``
  "ObjectCreated" instead of "PutObject", a constant ``sequencer``/``request-id``, and ``"version-id": "null"``
  (a string) on unversioned buckets. The key is sent as is, like moto's and AWS's examples.
- EventBridge PutEvents -> rule -> SQS (used by :meth:`AwsTestEnv.send_eventbridge_object_created`): rule
  matching and delivery are real, but moto's default target template drops the envelope's ``account``
  field. moto also accepts ``Source="aws.s3"``, which AWS reserves for S3 itself.

Everything else is sent with SQS SendMessage using the exact body AWS would produce (builders
``s3_event_body``, ``s3_test_event_body``, ``cloudtrail_sns_message``, ``eventbridge_object_event``).

SQS in moto: queue URLs are ``http://127.0.0.1:<port>/<account>/<name>`` (no region; see
``QueueInfo.aws_url``); a message goes to the DLQ during the first receive after it was received
``maxReceiveCount`` times (it keeps its ApproximateReceiveCount); MaximumMessageSize is 1 MiB.

moto keeps its state in process-wide backends: every MotoServer in one process shares it. Use unique names
(the ``create_*`` helpers do) or :meth:`MotoServer.reset` between tests.
"""

import gzip as gzip_module
import itertools
import json
import logging
import random
import string
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Union
from urllib.parse import quote_plus

import boto3
from moto.server import ThreadedMotoServer

from harness.cloudtrail_data import DEFAULT_ACCOUNT, log_file_json

REGION = "us-east-1"
ACCOUNT_ID = DEFAULT_ACCOUNT  # moto's default account, whatever the credentials
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
S3_NOTIFICATION_SUBJECT = "Amazon S3 Notification"
_SQS_ALL_ATTRIBUTES = {
    "AttributeNames": ["All"],
    "MessageAttributeNames": ["All"],
    "MessageSystemAttributeNames": ["All"],
}
_sequencer_counter = itertools.count()


class MotoServer:
    """moto in server mode on 127.0.0.1 and a free port, in a background thread of this process."""

    region = REGION
    account_id = ACCOUNT_ID

    def __init__(self) -> None:
        self._server: Optional[ThreadedMotoServer] = None
        self._endpoint_url: Optional[str] = None

    def start(self) -> "MotoServer":
        # werkzeug logs every request at INFO on stderr unless the logger is configured; keep test output quiet
        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level == logging.NOTSET:
            werkzeug_logger.setLevel(logging.WARNING)
        # Port 0: the OS picks a free port atomically, no probe-then-bind race.
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; valid for every AWS service moto emulates."""
        if self._endpoint_url is None:
            raise RuntimeError("MotoServer is not started")
        return self._endpoint_url

    def client(self, service: str) -> Any:
        """A new boto3 client for ``service`` pointed at this server, with the fixed fake credentials."""
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def child_environment(self) -> Dict[str, str]:
        """Environment variables that make an AWS SDK in a child process use this server and the fake
        credentials (for code that relies on the default credential chain)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def reset(self) -> None:
        """Drop every resource in every moto backend (moto's ``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def fetch_sns_signing_certificate(self, signing_cert_url: str) -> bytes:
        """The PEM certificate moto signed an SNS envelope with, given the envelope's ``SigningCertURL``.

        moto stores it under the ``sns.<region>.amazonaws.com`` path; an unsigned GET would be routed to
        moto's S3, so the request carries a (never verified) SigV4 header naming the sns service.
        """
        path = signing_cert_url.split("/", 3)[3]
        request = urllib.request.Request(
            f"{self.endpoint_url}/{path}",
            headers={
                "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20240101/{self.region}/sns/"
                "aws4_request, SignedHeaders=host, Signature=0"
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()


@dataclass(frozen=True)
class QueueInfo:
    """An SQS queue created by :class:`AwsTestEnv` (and its dead-letter queue, if it has one)."""

    name: str
    url: str  # as moto returns it: http://127.0.0.1:<port>/<account>/<name>
    arn: str
    dlq: Optional["QueueInfo"] = None

    @property
    def aws_url(self) -> str:
        """The production-shaped URL ``https://sqs.<region>.amazonaws.com/<account>/<name>``. moto accepts
        it as ``QueueUrl`` too (it resolves queues by name), so inputs can derive the region from it while
        their endpoint points at moto."""
        _, _, _, region, account, name = self.arn.split(":")
        return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


@dataclass(frozen=True)
class ObjectInfo:
    """An object as stored in S3, with what notifications about it carry."""

    bucket: str
    key: str
    etag: str  # without the surrounding quotes, as notifications carry it
    version_id: Optional[str]  # None unless the bucket is versioned
    size: int
    sequencer: str = ""  # S3's per-key ordering token; the same for every notification of this write

    @property
    def source(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class QueueCounts:
    visible: int
    not_visible: int  # received and not yet deleted or expired
    delayed: int


@dataclass(frozen=True)
class SentMessage:
    """What a notification helper handed to AWS."""

    via: str  # "sqs" (SendMessage), "sns" (Publish) or "eventbridge" (PutEvents)
    message_id: str  # the SQS MessageId, SNS MessageId or EventBridge EventId
    payload: str  # the exact text given to that API: SQS body, SNS Message, or EventBridge Detail


def cloudtrail_key(
    kind: str = "log",
    *,
    when: datetime,
    account: str = ACCOUNT_ID,
    region: str = REGION,
    organization_id: Optional[str] = None,
    prefix: str = "",
    trail_name: str = "management-events",
    rng: Optional[random.Random] = None,
) -> str:
    """An S3 key as CloudTrail names its files.

    - "log": ``AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/``
      ``<acct>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 random>.json.gz``
    - "insight": the same with ``CloudTrail-Insight`` for ``CloudTrail``
    - "digest": ``AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/``
      ``<acct>_CloudTrail-Digest_<region>_<trail>_<region>_<YYYYMMDDTHHMMSSZ>.json.gz``

    ``organization_id`` ("o-xxxxxxxxxx") gives the organization-trail layout ``AWSLogs/<org>/<acct>/...``;
    ``prefix`` is the trail's S3 key prefix. Pass ``rng`` for a reproducible random suffix.
    """
    picker = rng or random.Random()
    moment = when.astimezone(timezone.utc)
    root = f"{prefix.strip('/')}/AWSLogs" if prefix else "AWSLogs"
    if organization_id:
        root = f"{root}/{organization_id}"
    day = moment.strftime("%Y/%m/%d")
    if kind == "digest":
        stamp = moment.strftime("%Y%m%dT%H%M%SZ")
        name = f"{account}_CloudTrail-Digest_{region}_{trail_name}_{region}_{stamp}.json.gz"
        return f"{root}/{account}/CloudTrail-Digest/{region}/{day}/{name}"
    folders = {"log": "CloudTrail", "insight": "CloudTrail-Insight"}
    if kind not in folders:
        raise ValueError(f"kind must be 'log', 'insight' or 'digest', not {kind!r}")
    suffix = "".join(picker.choice(string.ascii_letters + string.digits) for _ in range(16))
    folder = folders[kind]
    name = f"{account}_{folder}_{region}_{moment.strftime('%Y%m%dT%H%MZ')}_{suffix}.json.gz"
    return f"{root}/{account}/{folder}/{region}/{day}/{name}"


def _iso_millis(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _request_id(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def s3_event_body(
    objects: Sequence[ObjectInfo],
    *,
    event_name: str = "ObjectCreated:Put",
    region: str = REGION,
    event_time: Optional[datetime] = None,
) -> str:
    """The S3 event notification (eventVersion 2.1) AWS sends for ``objects``, compact as S3 sends it.

    The key is URL-encoded like S3 does (``quote_plus``: space -> ``+``, ``+`` -> ``%2B``; ``/`` kept).
    ObjectRemoved records carry no size or eTag, as on AWS.
    """
    rng = random.Random()
    moment = event_time or datetime.now(timezone.utc)
    records = []
    for obj in objects:
        s3_object: Dict[str, Any] = {"key": quote_plus(obj.key, safe="/")}
        if event_name.startswith("ObjectCreated"):
            s3_object["size"] = obj.size
            s3_object["eTag"] = obj.etag
        if obj.version_id is not None:
            s3_object["versionId"] = obj.version_id
        s3_object["sequencer"] = obj.sequencer or _next_sequencer()
        records.append(
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": _iso_millis(moment),
                "eventName": event_name,
                # CloudTrail writes log files as a service principal session.
                "userIdentity": {"principalId": "AWS:AROAJ6CFMA2LEXAMPLE:regionalDeliverySession"},
                "requestParameters": {"sourceIPAddress": "10.0.113.45"},
                "responseElements": {
                    "x-amz-request-id": _request_id(rng),
                    "x-amz-id-2": "".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(76)),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "cloudtrail-to-sqs",
                    "bucket": {
                        "name": obj.bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKEXAMPLE"},
                        "arn": f"arn:aws:s3:::{obj.bucket}",
                    },
                    "object": s3_object,
                },
            }
        )
    return json.dumps({"Records": records}, separators=(",", ":"))


def s3_test_event_body(bucket: str, *, event_time: Optional[datetime] = None) -> str:
    """The ``s3:TestEvent`` S3 sends to a destination when a notification configuration is saved."""
    rng = random.Random()
    return json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": _iso_millis(event_time or datetime.now(timezone.utc)),
            "Bucket": bucket,
            "RequestId": _request_id(rng),
            "HostId": "".join(rng.choice(string.ascii_letters + string.digits + "+/=") for _ in range(76)),
        },
        separators=(",", ":"),
    )


def cloudtrail_sns_message(bucket: str, keys: Sequence[str]) -> str:
    """The message CloudTrail publishes to its SNS topic after delivering log files (keys not encoded)."""
    return json.dumps({"s3Bucket": bucket, "s3ObjectKey": list(keys)}, separators=(",", ":"))


def eventbridge_object_detail(obj: ObjectInfo, *, reason: str = "PutObject") -> Dict[str, Any]:
    """The ``detail`` of S3's EventBridge "Object Created" event as AWS documents it (``etag`` in lower
    case, ``version-id`` only for versioned buckets). The key is as is: AWS's examples show plain keys; how
    AWS writes keys with special characters here was not verified."""
    s3_object: Dict[str, Any] = {"key": obj.key, "size": obj.size, "etag": obj.etag}
    if obj.version_id is not None:
        s3_object["version-id"] = obj.version_id
    s3_object["sequencer"] = obj.sequencer or _next_sequencer()
    return {
        "version": "0",
        "bucket": {"name": obj.bucket},
        "object": s3_object,
        "request-id": _request_id(random.Random()),
        "requester": "cloudtrail.amazonaws.com",
        "source-ip-address": "cloudtrail.amazonaws.com",
        "reason": reason,
    }


def eventbridge_object_event(
    obj: ObjectInfo,
    *,
    detail_type: str = "Object Created",
    reason: str = "PutObject",
    region: str = REGION,
    account: str = ACCOUNT_ID,
) -> str:
    """The whole EventBridge event (envelope and detail) an SQS rule target receives from S3 on AWS."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": account,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [f"arn:aws:s3:::{obj.bucket}"],
            "detail": eventbridge_object_detail(obj, reason=reason),
        },
        separators=(",", ":"),
    )


def _next_sequencer() -> str:
    # S3 sequencers are hex strings that grow with write order for a key; nanoseconds plus a counter keep
    # them unique and increasing within a test run.
    return f"{time.time_ns() + next(_sequencer_counter):018X}"


class AwsTestEnv:
    """Creates buckets, queues, topics, subscriptions, notification routes and objects on a MotoServer,
    with real API calls, and inspects queues."""

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.s3 = moto.client("s3")
        self.sqs = moto.client("sqs")
        self.sns = moto.client("sns")
        self.events = moto.client("events")
        self._queue_policy_statements: Dict[str, List[Dict[str, Any]]] = {}

    # -- resources ----------------------------------------------------------------------------------------

    def create_bucket(self, name: Optional[str] = None, *, versioning: bool = False) -> str:
        """A bucket (unique name unless given); with ``versioning`` every upload gets a version id."""
        bucket = name or f"trail-{uuid.uuid4().hex[:12]}"
        self.s3.create_bucket(Bucket=bucket)
        if versioning:
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        return bucket

    def create_queue(
        self,
        name: Optional[str] = None,
        *,
        dlq: bool = True,
        max_receive_count: int = 5,
        visibility_timeout: int = 30,
    ) -> QueueInfo:
        """A standard queue; with ``dlq`` also ``<name>-dlq`` and a RedrivePolicy after
        ``max_receive_count`` receives. (moto moves a message on the receive *after* the last allowed one.)"""
        queue_name = name or f"cloudtrail-{uuid.uuid4().hex[:12]}"
        attributes = {"VisibilityTimeout": str(visibility_timeout)}
        dead_letter: Optional[QueueInfo] = None
        if dlq:
            dead_letter = self._create_plain_queue(f"{queue_name}-dlq", {})
            redrive = {"deadLetterTargetArn": dead_letter.arn, "maxReceiveCount": str(max_receive_count)}
            attributes["RedrivePolicy"] = json.dumps(redrive)
        queue = self._create_plain_queue(queue_name, attributes)
        return QueueInfo(name=queue.name, url=queue.url, arn=queue.arn, dlq=dead_letter)

    def _create_plain_queue(self, name: str, attributes: Dict[str, str]) -> QueueInfo:
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return QueueInfo(name=name, url=url, arn=arn)

    def create_topic(self, name: Optional[str] = None) -> str:
        """An SNS topic; returns its ARN."""
        return self.sns.create_topic(Name=name or f"cloudtrail-{uuid.uuid4().hex[:12]}")["TopicArn"]

    def subscribe_queue(self, topic_arn: str, queue: QueueInfo, *, raw: bool = False) -> str:
        """Subscribe ``queue`` to ``topic_arn`` (``raw``: RawMessageDelivery=true) and allow the topic in the
        queue policy as AWS requires. Returns the subscription ARN."""
        self._allow_sender(queue, "sns.amazonaws.com", topic_arn)
        attributes = {"RawMessageDelivery": "true"} if raw else {}
        response = self.sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue.arn,
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        return response["SubscriptionArn"]

    def configure_bucket_notifications(
        self,
        bucket: str,
        *,
        queue: Optional[QueueInfo] = None,
        topic_arn: Optional[str] = None,
        eventbridge: bool = False,
        events: Sequence[str] = ("s3:ObjectCreated:*",),
        prefix: Optional[str] = None,
    ) -> None:
        """Replace the bucket's notification configuration: ``events`` (optionally only under ``prefix``) to
        ``queue`` and/or ``topic_arn``, and/or everything to EventBridge. Grants S3 the right to send in the
        queue/topic policy. moto then sends an ``s3:TestEvent`` to the queue and the topic right away."""
        key_filter = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}} if prefix else None
        configuration: Dict[str, Any] = {}
        if queue is not None:
            self._allow_sender(queue, "s3.amazonaws.com", f"arn:aws:s3:::{bucket}")
            entry: Dict[str, Any] = {"QueueArn": queue.arn, "Events": list(events)}
            if key_filter:
                entry["Filter"] = key_filter
            configuration["QueueConfigurations"] = [entry]
        if topic_arn is not None:
            self._allow_s3_to_publish(topic_arn, bucket)
            entry = {"TopicArn": topic_arn, "Events": list(events)}
            if key_filter:
                entry["Filter"] = key_filter
            configuration["TopicConfigurations"] = [entry]
        if eventbridge:
            configuration["EventBridgeConfiguration"] = {}
        self.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)

    def route_eventbridge_to_queue(
        self, queue: QueueInfo, *, bucket: Optional[str] = None, detail_types: Sequence[str] = ("Object Created",)
    ) -> str:
        """A rule on the default bus sending S3 events of ``detail_types`` (from ``bucket`` if given) to
        ``queue``, with the queue policy AWS requires. Returns the rule name."""
        pattern: Dict[str, Any] = {"source": ["aws.s3"], "detail-type": list(detail_types)}
        if bucket is not None:
            pattern["detail"] = {"bucket": {"name": [bucket]}}
        rule_name = f"s3-to-{queue.name}"[:64]
        rule_arn = self.events.put_rule(Name=rule_name, EventPattern=json.dumps(pattern))["RuleArn"]
        self._allow_sender(queue, "events.amazonaws.com", rule_arn)
        self.events.put_targets(Rule=rule_name, Targets=[{"Id": "sqs", "Arn": queue.arn}])
        return rule_name

    def _allow_sender(self, queue: QueueInfo, service: str, source_arn: str) -> None:
        statements = self._queue_policy_statements.setdefault(queue.arn, [])
        statements.append(
            {
                "Sid": f"allow-{service.split('.')[0]}-{len(statements)}",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        )
        policy = {"Version": "2012-10-17", "Statement": statements}
        self.sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})

    def _allow_s3_to_publish(self, topic_arn: str, bucket: str) -> None:
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "allow-s3",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "SNS:Publish",
                    "Resource": topic_arn,
                    "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
                }
            ],
        }
        self.sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(policy))

    # -- objects ------------------------------------------------------------------------------------------

    def put_cloudtrail_object(
        self,
        bucket: str,
        key: str,
        data: Union[Sequence[Dict[str, Any]], bytes],
        *,
        gzip: bool = True,
    ) -> ObjectInfo:
        """Upload a log file. ``data`` is a list of records (written as compact ``{"Records":[...]}``) or the
        exact bytes to store (corrupt, truncated, digest, ...); with ``gzip`` the document is gzip-compressed
        first. Triggers whatever notifications the bucket has configured."""
        document = data if isinstance(data, bytes) else log_file_json(data)
        body = gzip_module.compress(document, mtime=0) if gzip else document
        response = self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        return ObjectInfo(
            bucket=bucket,
            key=key,
            etag=response["ETag"].strip('"'),
            version_id=response.get("VersionId"),
            size=len(body),
            sequencer=_next_sequencer(),
        )

    # -- notifications ------------------------------------------------------------------------------------

    def send_raw(self, queue: QueueInfo, body: str) -> SentMessage:
        """Send ``body`` to ``queue`` as is (malformed bodies, hand-written shapes)."""
        message_id = self.sqs.send_message(QueueUrl=queue.url, MessageBody=body)["MessageId"]
        return SentMessage(via="sqs", message_id=message_id, payload=body)

    def send_s3_event(
        self, queue: QueueInfo, objects: Sequence[ObjectInfo], *, event_name: str = "ObjectCreated:Put"
    ) -> SentMessage:
        """The S3 event notification AWS would send straight to SQS (all fields; see :func:`s3_event_body`).
        Use ``event_name="ObjectRemoved:Delete"`` etc. for non-create events."""
        return self.send_raw(queue, s3_event_body(objects, event_name=event_name))

    def send_s3_test_event(self, queue: QueueInfo, bucket: str) -> SentMessage:
        """The ``s3:TestEvent`` body, with AWS's RequestId and HostId (moto's own lacks both)."""
        return self.send_raw(queue, s3_test_event_body(bucket))

    def publish_s3_event(
        self,
        topic_arn: str,
        objects: Sequence[ObjectInfo],
        *,
        event_name: str = "ObjectCreated:Put",
        subject: Optional[str] = S3_NOTIFICATION_SUBJECT,
    ) -> SentMessage:
        """Publish the S3 event notification to an SNS topic as S3 does (Subject "Amazon S3 Notification");
        moto delivers it to every subscribed queue, wrapped or raw per subscription. Pass ``subject=None``
        when the envelope's signature must verify (see the module notes)."""
        return self._publish(topic_arn, s3_event_body(objects, event_name=event_name), subject)

    def publish_cloudtrail_notification(self, topic_arn: str, bucket: str, keys: Sequence[str]) -> SentMessage:
        """CloudTrail's own SNS notification ``{"s3Bucket": ..., "s3ObjectKey": [...]}`` published to the topic."""
        return self._publish(topic_arn, cloudtrail_sns_message(bucket, keys), None)

    def _publish(self, topic_arn: str, message: str, subject: Optional[str]) -> SentMessage:
        arguments = {"TopicArn": topic_arn, "Message": message}
        if subject is not None:
            arguments["Subject"] = subject
        message_id = self.sns.publish(**arguments)["MessageId"]
        return SentMessage(via="sns", message_id=message_id, payload=message)

    def send_eventbridge_object_created(self, objects: Sequence[ObjectInfo]) -> List[SentMessage]:
        """One S3 "Object Created" event per object through EventBridge PutEvents on the default bus; the
        rules (see :meth:`route_eventbridge_to_queue`) deliver them. The detail is AWS's, see
        :func:`eventbridge_object_detail`; moto's envelope lacks ``account``."""
        sent = []
        for obj in objects:
            detail = json.dumps(eventbridge_object_detail(obj), separators=(",", ":"))
            response = self.events.put_events(
                Entries=[
                    {
                        "Source": "aws.s3",
                        "DetailType": "Object Created",
                        "Detail": detail,
                        "Resources": [f"arn:aws:s3:::{obj.bucket}"],
                    }
                ]
            )
            entry = response["Entries"][0]
            if "EventId" not in entry:
                raise RuntimeError(f"PutEvents rejected the event: {entry}")
            sent.append(SentMessage(via="eventbridge", message_id=entry["EventId"], payload=detail))
        return sent

    # -- queue inspection ---------------------------------------------------------------------------------

    def queue_counts(self, queue: QueueInfo) -> QueueCounts:
        """ApproximateNumberOfMessages / ...NotVisible / ...Delayed (exact in moto)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return QueueCounts(
            visible=int(attributes["ApproximateNumberOfMessages"]),
            not_visible=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            delayed=int(attributes["ApproximateNumberOfMessagesDelayed"]),
        )

    def wait_until_drained(self, queue: QueueInfo, timeout: float) -> None:
        """Wait until the queue holds no visible and no in-flight message; AssertionError with its counts if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.queue_counts(queue)
            if counts.visible + counts.not_visible == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"queue not drained after {timeout} s: {self.queue_counts(queue)}")

    def receive(
        self,
        queue: QueueInfo,
        *,
        max_messages: int = 10,
        wait_seconds: int = 0,
        visibility_timeout: Optional[int] = None,
    ) -> List[Dict[str, Any]]:
        """ReceiveMessage with every attribute (ApproximateReceiveCount, SentTimestamp, message attributes).
        The messages stay in the queue (in flight) until their visibility lapses."""
        arguments: Dict[str, Any] = dict(
            QueueUrl=queue.url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds, **_SQS_ALL_ATTRIBUTES
        )
        if visibility_timeout is not None:
            arguments["VisibilityTimeout"] = visibility_timeout
        return self.sqs.receive_message(**arguments).get("Messages", [])

    def drain(self, queue: QueueInfo) -> List[Dict[str, Any]]:
        """Receive and delete every visible message (e.g. ``drain(queue.dlq)``); returns them in receive
        order. Messages in flight elsewhere are not waited for."""
        drained: List[Dict[str, Any]] = []
        while True:
            batch = self.receive(queue)
            if not batch:
                return drained
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            self.sqs.delete_message_batch(QueueUrl=queue.url, Entries=entries)
            drained.extend(batch)

    def purge(self, queue: QueueInfo) -> None:
        self.sqs.purge_queue(QueueUrl=queue.url)
