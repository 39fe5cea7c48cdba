"""Realistic, deterministic CloudTrail records and log files for tests, the demo and the benchmark.

A record has the shape CloudTrail writes (eventVersion 1.08-1.10, the usual userIdentity types, nested
requestParameters/responseElements, tlsDetails, occasional errors). Some userAgent values carry non-ASCII
text and XML-special characters (``<``, ``&``, quotes, ``]]>``) so that every pipeline run exercises
XML escaping. Given the same seed, every function here returns identical output, byte for byte.

Traceability: the last 12 hex digits of a generated ``eventID`` are the record's ``index``, so a test
can map an indexed event back to the record it came from (:func:`record_index`).

Typical use::

    records = make_records(500, seed=7)
    body = gzip_log_file(records)          # what CloudTrail puts in S3
    text = record_json(records[0])         # one record as it appears inside that file
"""

import gzip
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence

DEFAULT_ACCOUNT = "123456789012"  # moto's default account, so records match the moto-side resources
DEFAULT_START_TIME = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
SIZES = ("normal", "large")
LARGE_RECORD_MIN_BYTES = 50 * 1024
LARGE_RECORD_MAX_BYTES = 256 * 1024

_REGIONS = ("us-east-1", "us-east-1", "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
_EVENT_VERSIONS = ("1.08", "1.09", "1.09", "1.10")
_USER_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/5.10.213-201.855.amzn2.x86_64 exe/x86_64.amzn.2 prompt/off "
    "command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.11.8 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.150.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.3",
    "console.amazonaws.com",
)
# Agents that a naive XML writer (no escaping, CDATA wrapping, ASCII-only encoding) would break on.
_HOSTILE_USER_AGENTS = (
    'Ünïcødé-Scanner/2.1 (Ω; 日本語ツール) <probe attr="1"> & \'single\' "double"',
    "ops-script/1.0 (contact: Zoë <zoe@example.com>) & friends ]]> done",
    'custom-agent/0.9 "quoted" <![CDATA[ x ]]> é ü ß 🚀',
)
_HOSTILE_USER_AGENT_RATE = 0.15
_ERROR_RATE = 0.03
_USER_NAMES = ("alice", "bob", "ci-deployer", "zoe.admin", "backup-operator")
_ROLE_NAMES = ("OrganizationAccountAccessRole", "AWSReservedSSO_ReadOnly_5f2c1e", "lambda-orders-exec", "ci-role")
_SERVICE_PRINCIPALS = ("ec2.amazonaws.com", "lambda.amazonaws.com", "autoscaling.amazonaws.com")


@dataclass(frozen=True)
class _ApiCall:
    """One API in the event mix: where CloudTrail records it and how its parameters look."""

    source: str
    name: str
    read_only: bool
    weight: int
    request: Callable[[random.Random, "_Context"], Optional[Dict[str, Any]]]
    response: Optional[Callable[[random.Random, "_Context"], Optional[Dict[str, Any]]]] = None
    resource_type: Optional[str] = None  # CloudTrail lists the resource touched for these APIs


@dataclass(frozen=True)
class _Context:
    account: str
    region: str
    event_time: datetime


def _hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def _alnum_upper(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(length))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _instance_id(rng: random.Random) -> str:
    return "i-0" + _hex(rng, 16)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe_instances(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    state = rng.choice(("running", "stopped", "pending"))
    return {
        "instancesSet": {},
        "filterSet": {"items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": state}]}}]},
    }


def _describe_security_groups(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"securityGroupSet": {}, "securityGroupIdSet": {"items": [{"groupId": "sg-0" + _hex(rng, 16)}]}}


def _get_bucket_acl(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    bucket = rng.choice(("orders-archive", "web-assets-prod", "aws-cloudtrail-logs-central"))
    return {"bucketName": bucket, "Host": f"{bucket}.s3.{ctx.region}.amazonaws.com", "acl": ""}


def _list_roles(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"maxItems": rng.choice((100, 1000)), "pathPrefix": "/"}


def _get_user(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"userName": rng.choice(_USER_NAMES)}


def _assume_role(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    role = rng.choice(_ROLE_NAMES)
    return {
        "roleArn": f"arn:aws:iam::{ctx.account}:role/{role}",
        "roleSessionName": f"session-{_hex(rng, 8)}",
        "durationSeconds": 3600,
    }


def _assume_role_response(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    expiration = ctx.event_time + timedelta(hours=1)
    session = f"session-{_hex(rng, 8)}"
    role = rng.choice(_ROLE_NAMES)
    return {
        "credentials": {
            "accessKeyId": "ASIA" + _alnum_upper(rng, 16),
            "sessionToken": "IQoJb3JpZ2luX2VjE" + _alnum_upper(rng, 40),
            "expiration": expiration.strftime("%b %d, %Y, %I:%M:%S %p"),
        },
        "assumedRoleUser": {
            "assumedRoleId": f"AROA{_alnum_upper(rng, 17)}:{session}",
            "arn": f"arn:aws:sts::{ctx.account}:assumed-role/{role}/{session}",
        },
    }


def _kms_decrypt(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    function = rng.choice(("orders-api", "invoice-renderer", "nightly-report"))
    return {
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "encryptionContext": {
            "aws:lambda:FunctionArn": f"arn:aws:lambda:{ctx.region}:{ctx.account}:function:{function}"
        },
    }


def _generate_data_key(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {
        "keyId": "arn:aws:kms:" + ctx.region + ":" + ctx.account + ":key/" + _uuid(rng),
        "keySpec": "AES_256",
        "encryptionContext": {
            "aws:s3:arn": f"arn:aws:s3:::orders-archive/{ctx.event_time:%Y/%m/%d}/part-{_hex(rng, 6)}"
        },
    }


def _lookup_events(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {
        "maxResults": 50,
        "lookupAttributes": [
            {"attributeKey": "EventName", "attributeValue": rng.choice(("ConsoleLogin", "RunInstances"))}
        ],
    }


def _get_parameter(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"name": rng.choice(("/app/prod/db-host", "/app/prod/feature-flags", "/ci/token")), "withDecryption": True}


def _get_secret_value(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"secretId": f"arn:aws:secretsmanager:{ctx.region}:{ctx.account}:secret:prod/db-{_hex(rng, 6)}"}


def _describe_table(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"tableName": rng.choice(("orders", "sessions", "inventory"))}


def _describe_log_groups(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"logGroupNamePrefix": rng.choice(("/aws/lambda/", "/ecs/", "/aws/rds/"))}


def _no_parameters(rng: random.Random, ctx: _Context) -> None:
    return None


def _run_instances(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {
        "instancesSet": {"items": [{"imageId": "ami-0" + _hex(rng, 16), "minCount": 1, "maxCount": 1}]},
        "instanceType": rng.choice(("t3.micro", "m6i.large", "c7g.xlarge")),
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        "userData": "<sensitiveDataRemoved>",
        "tagSpecificationSet": {
            "items": [{"resourceType": "instance", "tags": [{"key": "Name", "value": f"web-{rng.randint(1, 99)}"}]}]
        },
    }


def _run_instances_response(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {
        "requestId": _uuid(rng),
        "reservationId": "r-0" + _hex(rng, 16),
        "ownerId": ctx.account,
        "groupSet": {},
        "instancesSet": {"items": [{"instanceId": _instance_id(rng), "instanceState": {"code": 0, "name": "pending"}}]},
    }


def _create_tags(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {
        "resourcesSet": {"items": [{"resourceId": _instance_id(rng)}]},
        "tagSet": {"items": [{"key": "owner", "value": rng.choice(("team-a", "team-b", "platform"))}]},
    }


def _ec2_ok_response(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"requestId": _uuid(rng), "_return": True}


def _put_role_policy(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    # The policy document is a JSON string inside JSON: escaped quotes survive every layer.
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::orders-archive/*"}],
    }
    return {
        "roleName": rng.choice(_ROLE_NAMES),
        "policyName": f"inline-{_hex(rng, 4)}",
        "policyDocument": json.dumps(document),
    }


def _create_log_stream(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {
        "logGroupName": "/aws/lambda/orders-api",
        "logStreamName": f"{ctx.event_time:%Y/%m/%d}/[$LATEST]{_hex(rng, 32)}",
    }


def _put_parameter(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {
        "name": "/app/prod/feature-flags",
        "type": "SecureString",
        "overwrite": True,
        "value": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }


def _put_parameter_response(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"version": rng.randint(2, 40), "tier": "Standard"}


def _stop_logging(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    return {"name": f"arn:aws:cloudtrail:{ctx.region}:{ctx.account}:trail/management-events"}


# Reads dominate real management-event traffic; a few writes (including security-relevant ones) remain.
_API_CALLS = (
    _ApiCall("ec2.amazonaws.com", "DescribeInstances", True, 16, _describe_instances),
    _ApiCall("ec2.amazonaws.com", "DescribeSecurityGroups", True, 6, _describe_security_groups),
    _ApiCall("s3.amazonaws.com", "GetBucketAcl", True, 8, _get_bucket_acl),
    _ApiCall("s3.amazonaws.com", "ListBuckets", True, 4, _no_parameters),
    _ApiCall("iam.amazonaws.com", "ListRoles", True, 4, _list_roles),
    _ApiCall("iam.amazonaws.com", "GetUser", True, 3, _get_user),
    _ApiCall("sts.amazonaws.com", "AssumeRole", True, 10, _assume_role, _assume_role_response, "AWS::IAM::Role"),
    _ApiCall("sts.amazonaws.com", "GetCallerIdentity", True, 5, _no_parameters),
    _ApiCall("kms.amazonaws.com", "Decrypt", True, 10, _kms_decrypt, None, "AWS::KMS::Key"),
    _ApiCall("kms.amazonaws.com", "GenerateDataKey", True, 6, _generate_data_key, None, "AWS::KMS::Key"),
    _ApiCall("cloudtrail.amazonaws.com", "LookupEvents", True, 2, _lookup_events),
    _ApiCall("ssm.amazonaws.com", "GetParameter", True, 4, _get_parameter),
    _ApiCall("secretsmanager.amazonaws.com", "GetSecretValue", True, 3, _get_secret_value),
    _ApiCall("dynamodb.amazonaws.com", "DescribeTable", True, 3, _describe_table),
    _ApiCall("logs.amazonaws.com", "DescribeLogGroups", True, 3, _describe_log_groups),
    _ApiCall("lambda.amazonaws.com", "ListFunctions20150331", True, 2, _no_parameters),
    _ApiCall("ec2.amazonaws.com", "RunInstances", False, 2, _run_instances, _run_instances_response),
    _ApiCall("ec2.amazonaws.com", "CreateTags", False, 3, _create_tags, _ec2_ok_response),
    _ApiCall("iam.amazonaws.com", "PutRolePolicy", False, 1, _put_role_policy),
    _ApiCall("logs.amazonaws.com", "CreateLogStream", False, 4, _create_log_stream),
    _ApiCall("ssm.amazonaws.com", "PutParameter", False, 1, _put_parameter, _put_parameter_response),
    _ApiCall("cloudtrail.amazonaws.com", "StopLogging", False, 1, _stop_logging),
)
_API_WEIGHTS = tuple(call.weight for call in _API_CALLS)


def _user_identity(rng: random.Random, ctx: _Context) -> Dict[str, Any]:
    kind = rng.choices(("IAMUser", "AssumedRole", "AWSService", "Root"), weights=(30, 55, 12, 3))[0]
    if kind == "IAMUser":
        user = rng.choice(_USER_NAMES)
        return {
            "type": "IAMUser",
            "principalId": "AIDA" + _alnum_upper(rng, 17),
            "arn": f"arn:aws:iam::{ctx.account}:user/{user}",
            "accountId": ctx.account,
            "accessKeyId": "AKIA" + _alnum_upper(rng, 16),
            "userName": user,
        }
    if kind == "AssumedRole":
        role = rng.choice(_ROLE_NAMES)
        role_id = "AROA" + _alnum_upper(rng, 17)
        session = rng.choice(
            ("i-0" + _hex(rng, 16), f"botocore-session-{rng.randint(10**9, 10**10)}", "zoe@example.com")
        )
        created = ctx.event_time - timedelta(minutes=rng.randint(1, 55))
        return {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session}",
            "arn": f"arn:aws:sts::{ctx.account}:assumed-role/{role}/{session}",
            "accountId": ctx.account,
            "accessKeyId": "ASIA" + _alnum_upper(rng, 16),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": f"arn:aws:iam::{ctx.account}:role/{role}",
                    "accountId": ctx.account,
                    "userName": role,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": _iso(created), "mfaAuthenticated": "false"},
            },
        }
    if kind == "AWSService":
        return {"type": "AWSService", "invokedBy": rng.choice(_SERVICE_PRINCIPALS)}
    return {
        "type": "Root",
        "principalId": ctx.account,
        "arn": f"arn:aws:iam::{ctx.account}:root",
        "accountId": ctx.account,
        "accessKeyId": "ASIA" + _alnum_upper(rng, 16),
    }


def _source_ip(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"2001:db8:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
    first = rng.choice((3, 18, 34, 52, 54, 198, 203))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _resource(rng: random.Random, ctx: _Context, resource_type: str) -> Dict[str, str]:
    if resource_type == "AWS::IAM::Role":
        arn = f"arn:aws:iam::{ctx.account}:role/{rng.choice(_ROLE_NAMES)}"
    else:
        arn = f"arn:aws:kms:{ctx.region}:{ctx.account}:key/{_uuid(rng)}"
    return {"accountId": ctx.account, "type": resource_type, "ARN": arn}


def _event_id(rng: random.Random, index: int) -> str:
    # A valid version-4 UUID whose node field (last 12 hex digits) is the record index.
    random_part = uuid.UUID(int=rng.getrandbits(128), version=4).hex[:20]
    return str(uuid.UUID(hex=random_part + f"{index & 0xFFFFFFFFFFFF:012x}"))


def record_index(event_id: str) -> int:
    """The ``index`` a record made by this module was generated with, read back from its ``eventID``."""
    return int(event_id.replace("-", "")[-12:], 16)


def make_record(
    rng: random.Random,
    index: int,
    *,
    event_time: datetime,
    account: str = DEFAULT_ACCOUNT,
    size: str = "normal",
    hostile_user_agent_rate: float = _HOSTILE_USER_AGENT_RATE,
) -> Dict[str, Any]:
    """One CloudTrail management-event record.

    ``size="normal"`` gives about 1.3 KB of compact JSON; ``size="large"`` gives a DescribeInstances call
    whose ``requestParameters.instancesSet`` makes the record between 50 KB and 256 KB (uniformly drawn).
    ``event_time`` must be timezone-aware (UTC). Output depends only on the rng state and the arguments.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    if event_time.tzinfo is None:
        raise ValueError("event_time must be timezone-aware")
    region = rng.choice(_REGIONS)
    ctx = _Context(account=account, region=region, event_time=event_time.astimezone(timezone.utc))
    call = _API_CALLS[0] if size == "large" else rng.choices(_API_CALLS, weights=_API_WEIGHTS)[0]
    identity = _user_identity(rng, ctx)
    event_version = rng.choice(_EVENT_VERSIONS)
    if identity["type"] == "AWSService":
        source_ip = user_agent = identity["invokedBy"]
    else:
        source_ip = _source_ip(rng)
        hostile = rng.random() < hostile_user_agent_rate
        user_agent = rng.choice(_HOSTILE_USER_AGENTS if hostile else _USER_AGENTS)
    failed = rng.random() < _ERROR_RATE
    record: Dict[str, Any] = {
        "eventVersion": event_version,
        "userIdentity": identity,
        "eventTime": _iso(ctx.event_time),
        "eventSource": call.source,
        "eventName": call.name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
    }
    if failed:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = (
            f"User: {identity.get('arn', identity.get('invokedBy'))} is not authorized to perform: "
            f'{call.source.split(".")[0]}:{call.name} on resource: "*" because no identity-based policy allows it'
        )
    record["requestParameters"] = call.request(rng, ctx)
    record["responseElements"] = None if failed or call.response is None else call.response(rng, ctx)
    if call.source == "s3.amazonaws.com":
        record["additionalEventData"] = {
            "SignatureVersion": "SigV4",
            "CipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": _alnum_upper(rng, 76),
            "bytesTransferredOut": rng.randint(200, 4000),
        }
    record["requestID"] = _uuid(rng)
    record["eventID"] = _event_id(rng, index)
    record["readOnly"] = call.read_only
    if call.resource_type is not None:
        record["resources"] = [_resource(rng, ctx, call.resource_type)]
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = True
    record["recipientAccountId"] = account
    record["eventCategory"] = "Management"
    record["tlsDetails"] = {
        "tlsVersion": rng.choice(("TLSv1.2", "TLSv1.3")),
        "cipherSuite": rng.choice(("ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256")),
        "clientProvidedHostHeader": f"{call.source.split('.')[0]}.{region}.amazonaws.com",
    }
    if size == "large":
        _grow_to(record, rng.randint(LARGE_RECORD_MIN_BYTES, LARGE_RECORD_MAX_BYTES), rng)
    return record


def _grow_to(record: Dict[str, Any], target_bytes: int, rng: random.Random) -> None:
    """Fill ``requestParameters.instancesSet.items`` until the record is about ``target_bytes`` long."""
    items: List[Dict[str, str]] = []
    record["requestParameters"] = {"instancesSet": {"items": items}, "filterSet": {}}
    base = len(record_json(record).encode("utf-8"))
    item_bytes = len(json.dumps({"instanceId": "i-0" + "0" * 16}, separators=(",", ":"))) + 1  # plus comma
    items.extend({"instanceId": _instance_id(rng)} for _ in range(max(1, (target_bytes - base) // item_bytes)))


def make_records(
    n: int,
    seed: int,
    *,
    account: str = DEFAULT_ACCOUNT,
    start_time: datetime = DEFAULT_START_TIME,
    size: str = "normal",
    first_index: int = 0,
    hostile_user_agent_rate: float = _HOSTILE_USER_AGENT_RATE,
) -> List[Dict[str, Any]]:
    """``n`` records with indexes ``first_index..first_index+n-1`` and non-decreasing eventTime from
    ``start_time`` (about two events a second, as a busy account produces). Same seed, same records.
    ``hostile_user_agent_rate`` is the share of user agents with non-ASCII and XML-special characters (the
    default stresses escaping; real trails have far fewer)."""
    rng = random.Random(seed)
    records = []
    moment = start_time
    for index in range(first_index, first_index + n):
        records.append(
            make_record(
                rng,
                index,
                event_time=moment,
                account=account,
                size=size,
                hostile_user_agent_rate=hostile_user_agent_rate,
            )
        )
        moment += timedelta(seconds=rng.expovariate(2.0))
    return records


def record_json(record: Dict[str, Any]) -> str:
    """A record serialised as CloudTrail writes it inside a log file: compact, UTF-8 (not \\u-escaped)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def log_file_json(records: Sequence[Dict[str, Any]]) -> bytes:
    """The uncompressed log-file document ``{"Records":[...]}``, compact, UTF-8."""
    return ('{"Records":[' + ",".join(record_json(r) for r in records) + "]}").encode("utf-8")


def gzip_log_file(records: Sequence[Dict[str, Any]]) -> bytes:
    """A CloudTrail log file as stored in S3: the compact document, gzip-compressed (mtime 0, so the
    bytes are reproducible)."""
    return gzip.compress(log_file_json(records), mtime=0)
