"""Input settings and the add-on's configuration in splunkd (accounts, IAM roles, proxy, log level).

Everything an admin can get wrong is checked here, once, and reported as a ConfigError whose message
says what to change and where.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Dict, FrozenSet, List, Mapping, Optional
from urllib.parse import quote, urlsplit

ADDON_NAME = "TA_aws_cloudtrail"
SCHEME = "aws_cloudtrail_sqs"
BACKFILL_SCHEME = "aws_cloudtrail_s3_backfill"
ACCOUNT_CONF = "ta_aws_cloudtrail_account"
IAM_ROLE_CONF = "ta_aws_cloudtrail_iam_role"
SETTINGS_CONF = "ta_aws_cloudtrail_settings"

ACCESS_KEY = "access_key"
DEFAULT_CHAIN = "default_chain"
PARTITIONS = ("aws", "aws-us-gov", "aws-cn")

_QUEUE_URL = re.compile(r"^https?://[^\s/?#]+/(\d{12})/([A-Za-z0-9_-]{1,80}(?:\.fifo)?)$")
_ENDPOINT_URL = re.compile(r"^https?://[^\s/?#]+/?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,62}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_EVENT_SOURCE = re.compile(r"^[\w.-]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEY_PREFIX = re.compile(r"^[^\x00-\x1f]{0,900}$")
# sqs.us-east-1.amazonaws.com, sqs-fips.us-gov-west-1.amazonaws.com, sqs.cn-north-1.amazonaws.com.cn,
# us-east-1.queue.amazonaws.com (legacy), vpce-0abc-xyz.sqs.us-east-1.vpce.amazonaws.com
_REGION_IN_SQS_HOST = re.compile(
    r"(?:^|\.)(?:sqs(?:-fips)?\.)?([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.(?:queue\.|vpce\.)?amazonaws\.com(?:\.cn)?$"
)


class ConfigError(Exception):
    """A configuration problem an admin must fix; the message says what and where."""


def credential_realm(conf_name: str) -> str:
    """The storage/passwords realm UCC uses for the encrypted fields of a conf file."""
    return f"__REST_CREDENTIAL__#{ADDON_NAME}#configs/conf-{conf_name}"


@dataclass(frozen=True)
class SplunkdConnection:
    """Where splunkd's REST API is and the session key to use (from the modular input's metadata)."""

    scheme: str
    host: str
    port: int
    session_key: str = field(repr=False)

    @classmethod
    def from_server_uri(cls, server_uri: str, session_key: str) -> SplunkdConnection:
        parts = urlsplit(server_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"splunkd server_uri {server_uri!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, session_key)

    def rest_kwargs(self) -> Dict[str, object]:
        """Explicit scheme/host/port for solnlib: outside splunkd's own Python it cannot discover them."""
        return {"scheme": self.scheme, "host": self.host, "port": self.port}


@dataclass(frozen=True)
class AwsAccount:
    name: str
    credential_type: str
    access_key_id: Optional[str]
    secret_access_key: Optional[str] = field(repr=False)
    partition: str = "aws"
    sts_endpoint_url: Optional[str] = None


@dataclass(frozen=True)
class IamRole:
    name: str
    role_arn: str
    external_id: Optional[str] = field(repr=False)
    session_duration: int = 3600


@dataclass(frozen=True)
class ProxySettings:
    host: str
    port: int
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """http://[user:password@]host:port, credentials percent-encoded (botocore's proxy URL form)."""
        auth = ""
        if self.username:
            auth = quote(self.username, safe="")
            if self.password:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{auth}{host}:{self.port}"


@dataclass(frozen=True)
class InputSettings:
    """One aws_cloudtrail_sqs stanza, validated."""

    name: str
    stanza: str
    account: str
    iam_role: Optional[str]
    queue_url: str
    region: str
    index: Optional[str]
    host: Optional[str]
    sourcetype: str
    batch_size: int
    max_in_flight: int
    visibility_timeout: int
    max_receive_count: int
    require_dlq: bool
    exclude_event_names: Optional[str]
    exclude_read_only: bool
    include_event_sources: FrozenSet[str]
    exclude_event_sources: FrozenSet[str]
    allowed_buckets: FrozenSet[str]
    allowed_accounts: FrozenSet[str]
    sns_signature_validation: bool
    ingest_digest_files: bool
    sqs_endpoint_url: Optional[str]
    s3_endpoint_url: Optional[str]
    sts_endpoint_url: Optional[str]
    ca_bundle: Optional[str]
    max_decompressed_bytes: int
    checkpoint_retention_days: int

    @property
    def queue_account_id(self) -> str:
        match = _QUEUE_URL.match(self.queue_url)
        return match.group(1) if match else ""


def _text(params: Mapping[str, object], key: str) -> Optional[str]:
    value = params.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _flag(params: Mapping[str, object], key: str, default: bool) -> bool:
    value = _text(params, key)
    if value is None:
        return default
    return value.lower() in ("1", "true", "t", "yes", "y", "on")


def _csv(value: Optional[str]) -> List[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


class _Problems:
    """Collects every problem of a stanza so the admin sees them all at once."""

    def __init__(self) -> None:
        self.items: List[str] = []

    def integer(self, params: Mapping[str, object], key: str, label: str, low: int, high: int, default: int) -> int:
        value = _text(params, key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.items.append(f"{label} ({key}) must be a whole number, got {value!r}")
            return default
        if not low <= number <= high:
            self.items.append(f"{label} ({key}) must be between {low} and {high}, got {number}")
            return default
        return number

    def url(self, params: Mapping[str, object], key: str, label: str) -> Optional[str]:
        value = _text(params, key)
        if value is not None and not _ENDPOINT_URL.match(value):
            self.items.append(f"{label} ({key}) must look like https://host[:port], got {value!r}")
            return None
        return value.rstrip("/") if value else None


def region_from_queue_url(queue_url: str) -> Optional[str]:
    """The region in an AWS SQS queue URL (public, FIPS, legacy or VPC endpoint host); None if absent."""
    host = urlsplit(queue_url).hostname or ""
    if host == "queue.amazonaws.com":
        return "us-east-1"
    match = _REGION_IN_SQS_HOST.search(host)
    return match.group(1) if match else None


def parse_input_settings(stanza: str, params: Mapping[str, object]) -> InputSettings:
    """Validate one input stanza ("aws_cloudtrail_sqs://name" and its parameters)."""
    problems = _Problems()
    name = stanza.split("://", 1)[1] if "://" in stanza else stanza

    account = _text(params, "account")
    if not account:
        problems.items.append("AWS account (account) is required: choose one from Configuration > AWS Accounts")

    queue_url = _text(params, "sqs_queue_url") or ""
    if not _QUEUE_URL.match(queue_url):
        problems.items.append(
            "SQS queue URL (sqs_queue_url) must look like "
            f"https://sqs.<region>.amazonaws.com/<12-digit account>/<queue name>, got {queue_url!r}"
        )

    region = _text(params, "region") or region_from_queue_url(queue_url)
    if not region:
        problems.items.append("Region (region) is required: it cannot be read from this queue URL's host")
    elif not _REGION.match(region):
        problems.items.append(f"Region (region) must look like us-east-1, got {region!r}")

    buckets = _csv(_text(params, "allowed_buckets"))
    bad_buckets = [b for b in buckets if not _BUCKET.match(b)]
    if bad_buckets:
        problems.items.append(f"Allowed buckets (allowed_buckets) has invalid bucket names: {', '.join(bad_buckets)}")

    settings = InputSettings(
        name=name,
        stanza=stanza,
        queue_url=queue_url,
        region=region or "",
        batch_size=problems.integer(params, "sqs_batch_size", "SQS batch size", 1, 10, 10),
        visibility_timeout=problems.integer(params, "visibility_timeout", "Visibility timeout", 30, 43200, 300),
        max_receive_count=problems.integer(params, "max_receive_count", "Max receive count", 1, 1000, 5),
        require_dlq=_flag(params, "require_dlq", True),
        allowed_buckets=frozenset(buckets),
        sns_signature_validation=_flag(params, "sns_signature_validation", True),
        sqs_endpoint_url=problems.url(params, "sqs_endpoint_url", "SQS endpoint URL"),
        **_object_path_fields(params, problems, account),
    )
    if problems.items:
        raise ConfigError(f"Input {name!r} is misconfigured: " + "; ".join(problems.items))
    return settings


def _object_path_fields(params: Mapping[str, object], problems: _Problems, account: Optional[str]) -> Dict[str, Any]:
    """The settings every input that reads S3 objects has: credentials, destination, filters, limits."""
    exclude_event_names = _text(params, "exclude_event_names")
    if exclude_event_names:
        try:
            re.compile(exclude_event_names)
        except re.error as exc:
            problems.items.append(f"Exclude event names (exclude_event_names) is not a valid regular expression: {exc}")
    event_sources = {}
    for key, label in (
        ("include_event_sources", "Include event sources"),
        ("exclude_event_sources", "Exclude event sources"),
    ):
        values = _csv(_text(params, key))
        bad = [v for v in values if not _EVENT_SOURCE.match(v)]
        if bad:
            problems.items.append(f"{label} ({key}) has invalid values: {', '.join(bad)}")
        event_sources[key] = frozenset(values)
    accounts = _account_ids(params, "allowed_accounts", "Allowed account IDs", problems)
    index = _text(params, "index")
    host = _text(params, "host")
    ca_bundle = _text(params, "ca_bundle")
    if ca_bundle is not None and not os.path.isabs(ca_bundle):
        # splunkd starts inputs in a working directory of its own: a relative path would mean nothing stable
        problems.items.append(
            f"CA bundle (ca_bundle) {ca_bundle!r} must be an absolute path on the host running the input"
        )
    elif ca_bundle is not None and not os.path.isfile(ca_bundle):
        problems.items.append(f"CA bundle (ca_bundle) {ca_bundle!r} is not a readable file")
    return {
        "account": account or "",
        "iam_role": _text(params, "aws_iam_role"),
        "index": None if index in (None, "default") else index,
        "host": None if host is None or host.startswith("$") else host,
        "sourcetype": _text(params, "sourcetype") or "aws:cloudtrail",
        "max_in_flight": problems.integer(params, "max_objects_in_flight", "Max objects in flight", 1, 64, 8),
        "exclude_event_names": exclude_event_names,
        "exclude_read_only": _flag(params, "exclude_read_only", False),
        "include_event_sources": event_sources["include_event_sources"],
        "exclude_event_sources": event_sources["exclude_event_sources"],
        "allowed_accounts": frozenset(accounts),
        "ingest_digest_files": _flag(params, "ingest_digest_files", False),
        "s3_endpoint_url": problems.url(params, "s3_endpoint_url", "S3 endpoint URL"),
        "sts_endpoint_url": problems.url(params, "sts_endpoint_url", "STS endpoint URL"),
        "ca_bundle": ca_bundle,
        "max_decompressed_bytes": problems.integer(
            params, "max_decompressed_mb", "Max object size (MB)", 1, 65536, 4096
        )
        * 1024
        * 1024,
        "checkpoint_retention_days": problems.integer(
            params, "checkpoint_retention_days", "Checkpoint retention (days)", 1, 3650, 14
        ),
    }


def _account_ids(params: Mapping[str, object], key: str, label: str, problems: _Problems) -> List[str]:
    accounts = _csv(_text(params, key))
    bad = [a for a in accounts if not _ACCOUNT_ID.match(a)]
    if bad:
        problems.items.append(f"{label} ({key}) must be 12-digit IDs: {', '.join(bad)}")
    return accounts


def _date(params: Mapping[str, object], key: str, label: str, problems: _Problems) -> Optional[date]:
    value = _text(params, key)
    if value is None:
        return None
    try:
        if not _DATE.match(value):
            raise ValueError
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        problems.items.append(f"{label} ({key}) must be a date YYYY-MM-DD (UTC), got {value!r}")
        return None


@dataclass(frozen=True)
class BackfillSettings:
    """One aws_cloudtrail_s3_backfill stanza, validated."""

    name: str
    stanza: str
    account: str
    iam_role: Optional[str]
    region: str
    bucket: str
    key_prefix: str  # "" or ends with "/"
    account_ids: FrozenSet[str]  # empty: every account found under AWSLogs/
    regions: FrozenSet[str]  # empty: every region found
    start_date: date
    end_date: Optional[date]  # None: today, whenever that is
    index: Optional[str]
    host: Optional[str]
    sourcetype: str
    max_in_flight: int
    exclude_event_names: Optional[str]
    exclude_read_only: bool
    include_event_sources: FrozenSet[str]
    exclude_event_sources: FrozenSet[str]
    allowed_accounts: FrozenSet[str]
    ingest_digest_files: bool
    s3_endpoint_url: Optional[str]
    sts_endpoint_url: Optional[str]
    ca_bundle: Optional[str]
    max_decompressed_bytes: int
    checkpoint_retention_days: int
    allowed_buckets: FrozenSet[str] = frozenset()  # the bucket is the input's own

    def last_day(self, today: Optional[date] = None) -> date:
        return self.end_date or today or datetime.now(timezone.utc).date()

    @property
    def range_id(self) -> str:
        """What the saved cursor belongs to: a change to any of it starts the backfill over."""
        end = self.end_date.isoformat() if self.end_date else "today"
        return "|".join(
            [
                self.bucket,
                self.key_prefix,
                ",".join(sorted(self.account_ids)),
                ",".join(sorted(self.regions)),
                self.start_date.isoformat(),
                end,
                "digests" if self.ingest_digest_files else "",
            ]
        )


def parse_backfill_settings(stanza: str, params: Mapping[str, object]) -> BackfillSettings:
    """Validate one backfill stanza ("aws_cloudtrail_s3_backfill://name" and its parameters)."""
    problems = _Problems()
    name = stanza.split("://", 1)[1] if "://" in stanza else stanza
    account = _text(params, "account")
    if not account:
        problems.items.append("AWS account (account) is required: choose one from Configuration > AWS Accounts")
    bucket = _text(params, "bucket_name") or ""
    if not _BUCKET.match(bucket):
        problems.items.append(f"Bucket (bucket_name) must be an S3 bucket name, got {bucket!r}")
    key_prefix = (_text(params, "key_prefix") or "").strip("/")
    if not _KEY_PREFIX.match(key_prefix) or "AWSLogs" in key_prefix.split("/"):
        problems.items.append(
            "Key prefix (key_prefix) is the trail's prefix before AWSLogs/ (for example cloudtrail), "
            f"got {key_prefix!r}"
        )
    regions = _csv(_text(params, "regions"))
    bad_regions = [r for r in regions if not _REGION.match(r)]
    if bad_regions:
        problems.items.append(f"Regions (regions) must look like us-east-1: {', '.join(bad_regions)}")
    region = _text(params, "region") or "us-east-1"
    if not _REGION.match(region):
        problems.items.append(f"Bucket region (region) must look like us-east-1, got {region!r}")
    start = _date(params, "start_date", "Start date", problems)
    if start is None and _text(params, "start_date") is None:
        problems.items.append("Start date (start_date) is required, for example 2026-01-01 (UTC)")
    end = _date(params, "end_date", "End date", problems)
    if start is not None and end is not None and end < start:
        problems.items.append(f"End date (end_date) {end.isoformat()} is before the start date {start.isoformat()}")
    today = datetime.now(timezone.utc).date()
    if start is not None and start > today:
        problems.items.append(f"Start date (start_date) {start.isoformat()} is in the future (UTC today: {today})")
    settings = BackfillSettings(
        name=name,
        stanza=stanza,
        region=region,
        bucket=bucket,
        key_prefix=key_prefix + "/" if key_prefix else "",
        account_ids=frozenset(_account_ids(params, "account_ids", "Account IDs", problems)),
        regions=frozenset(regions),
        start_date=start or today,
        end_date=end,
        **_object_path_fields(params, problems, account),
    )
    if problems.items:
        raise ConfigError(f"Input {name!r} is misconfigured: " + "; ".join(problems.items))
    return settings


def _conf_manager(conn: SplunkdConnection, conf_name: str):
    from solnlib import conf_manager

    return conf_manager.ConfManager(
        conn.session_key, ADDON_NAME, realm=credential_realm(conf_name), **conn.rest_kwargs()
    )


def _stanza(conn: SplunkdConnection, conf_name: str, stanza: str) -> Optional[Dict[str, str]]:
    """The decrypted stanza, or None when it (or the whole conf file) does not exist yet."""
    from solnlib import conf_manager

    try:
        try:
            conf = _conf_manager(conn, conf_name).get_conf(conf_name)
        except conf_manager.ConfManagerException:
            return None  # properties/<conf> is 404 until the first stanza of that conf is saved
        # stanza_exist() answers a 404 quietly; get() on a missing stanza logs a traceback from solnlib's retry
        if not conf.stanza_exist(stanza):
            return None
        return conf.get(stanza)
    except Exception as exc:  # splunkd unreachable, refusing the session key, answering 5xx
        from .logs import redact

        raise ConfigError(
            f"Cannot read {conf_name}.conf from splunkd at {conn.scheme}://{conn.host}:{conn.port}: "
            f"{type(exc).__name__}: {redact(exc)[:200]}"
        ) from None


def _read_stanza(conn: SplunkdConnection, conf_name: str, stanza: str, what: str, where: str) -> Dict[str, str]:
    found = _stanza(conn, conf_name, stanza)
    if found is None:
        raise ConfigError(f"{what} {stanza!r} does not exist: create it under {where}")
    return found


def parse_account(name: str, stanza: Mapping[str, object]) -> AwsAccount:
    credential_type = _text(stanza, "credential_type") or ACCESS_KEY
    if credential_type not in (ACCESS_KEY, DEFAULT_CHAIN):
        raise ConfigError(f"AWS account {name!r} has an unknown credential type {credential_type!r}")
    partition = _text(stanza, "partition") or "aws"
    if partition not in PARTITIONS:
        raise ConfigError(f"AWS account {name!r} has an unknown partition {partition!r}")
    access_key_id = _text(stanza, "aws_access_key_id")
    secret = _text(stanza, "aws_secret_access_key")
    if credential_type == ACCESS_KEY and not (access_key_id and secret):
        raise ConfigError(
            f"AWS account {name!r} uses access keys but its access key ID or secret access key is empty: "
            "edit it under Configuration > AWS Accounts"
        )
    sts_endpoint = _text(stanza, "sts_endpoint_url")
    return AwsAccount(
        name=name,
        credential_type=credential_type,
        access_key_id=access_key_id if credential_type == ACCESS_KEY else None,
        secret_access_key=secret if credential_type == ACCESS_KEY else None,
        partition=partition,
        sts_endpoint_url=sts_endpoint.rstrip("/") if sts_endpoint else None,
    )


def load_account(conn: SplunkdConnection, name: str) -> AwsAccount:
    stanza = _read_stanza(conn, ACCOUNT_CONF, name, "AWS account", "Configuration > AWS Accounts")
    return parse_account(name, stanza)


def parse_iam_role(name: str, stanza: Mapping[str, object]) -> IamRole:
    role_arn = _text(stanza, "role_arn") or ""
    if not re.match(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/", role_arn):
        raise ConfigError(f"IAM role {name!r} has an invalid role ARN {role_arn!r}")
    problems = _Problems()
    duration = problems.integer(stanza, "session_duration", "Session duration", 900, 43200, 3600)
    if problems.items:
        raise ConfigError(f"IAM role {name!r}: " + "; ".join(problems.items))
    return IamRole(name, role_arn, _text(stanza, "external_id"), duration)


def load_iam_role(conn: SplunkdConnection, name: str) -> IamRole:
    stanza = _read_stanza(conn, IAM_ROLE_CONF, name, "IAM role", "Configuration > IAM Roles")
    return parse_iam_role(name, stanza)


def parse_proxy(stanza: Mapping[str, object]) -> Optional[ProxySettings]:
    if not _flag(stanza, "proxy_enabled", False):
        return None
    proxy_type = _text(stanza, "proxy_type") or "http"
    if proxy_type != "http":
        raise ConfigError(
            f"Proxy type {proxy_type!r} is not supported (the AWS SDK supports HTTP proxies only): "
            "change it under Configuration > Proxy"
        )
    host = _text(stanza, "proxy_url")
    problems = _Problems()
    port = problems.integer(stanza, "proxy_port", "Proxy port", 1, 65535, 0)
    if not host or not port or problems.items:
        raise ConfigError("Proxy is enabled but its host or port is missing or invalid: fix Configuration > Proxy")
    return ProxySettings(host, port, _text(stanza, "proxy_username"), _text(stanza, "proxy_password"))


def load_proxy(conn: SplunkdConnection) -> Optional[ProxySettings]:
    stanza = _stanza(conn, SETTINGS_CONF, "proxy")
    return parse_proxy(stanza) if stanza is not None else None


def load_log_level(conn: SplunkdConnection) -> str:
    """The add-on's log level (Configuration > Logging); INFO when it was never saved.

    solnlib's get_log_level cannot be told where splunkd is, so the stanza is read here.
    """
    stanza = _stanza(conn, SETTINGS_CONF, "logging") or {}
    level = (_text(stanza, "loglevel") or "INFO").upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL") else "INFO"
