"""boto3 sessions and clients for the input, and AWS errors explained in one actionable sentence.

Credentials: an account's access keys, or the default chain (instance role, environment, ~/.aws); an
optional IAM role on top, assumed with ExternalId and DurationSeconds through botocore's own refreshable
credentials (renewed before they expire). Endpoints: the queue's region, custom SQS/S3/STS endpoint URLs.
Transport: proxy with auth, TLS verification always on (custom CA bundle optional), botocore's standard
retry mode for throttling and 5xx.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ProxyConnectionError,
)

from .logs import SECRETS, redact
from .settings import ACCESS_KEY, AwsAccount, IamRole

USER_AGENT = "TA_aws_cloudtrail/0.1.0"
STS_REGION_BY_PARTITION = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1"}
# Long polls wait up to 20 s: the read timeout must be longer.
SQS_READ_TIMEOUT = 40
S3_READ_TIMEOUT = 60
CONNECT_TIMEOUT = 10
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class AwsConnectionSettings:
    account: AwsAccount
    role: Optional[IamRole]
    region: str
    role_session_name: str = "splunk-ta-aws-cloudtrail"
    sqs_endpoint_url: Optional[str] = None
    s3_endpoint_url: Optional[str] = None
    sts_endpoint_url: Optional[str] = None
    proxy_url: Optional[str] = field(default=None, repr=False)
    ca_bundle: Optional[str] = None
    max_pool_connections: int = 10


def _client_config(settings: AwsConnectionSettings, read_timeout: int, max_attempts: int = MAX_ATTEMPTS) -> Config:
    return Config(
        region_name=settings.region,
        retries={"mode": "standard", "max_attempts": max_attempts},
        proxies={"http": settings.proxy_url, "https": settings.proxy_url} if settings.proxy_url else None,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=read_timeout,
        max_pool_connections=settings.max_pool_connections,
        user_agent_extra=USER_AGENT,
        tcp_keepalive=True,
    )


def _verify(settings: AwsConnectionSettings) -> Any:
    return settings.ca_bundle or True


def build_session(settings: AwsConnectionSettings) -> boto3.session.Session:
    """A boto3 session with the account's credentials, and the IAM role assumed on top of them if set."""
    account = settings.account
    source = botocore.session.Session()
    if account.credential_type == ACCESS_KEY:
        SECRETS.add(account.secret_access_key)
        source.set_credentials(account.access_key_id, account.secret_access_key)
    if settings.role is None:
        return boto3.session.Session(botocore_session=source, region_name=settings.region)

    role = settings.role
    SECRETS.add(role.external_id)
    source_credentials = source.get_credentials()
    if source_credentials is None:
        raise NoCredentialsError()
    extra_args = {"RoleSessionName": settings.role_session_name[:64], "DurationSeconds": role.session_duration}
    if role.external_id:
        extra_args["ExternalId"] = role.external_id
    create_sts = functools.partial(
        _create_client_for_fetcher,
        source,
        endpoint_url=settings.sts_endpoint_url or account.sts_endpoint_url,
        region_name=settings.region,
        config=_client_config(settings, S3_READ_TIMEOUT),
        verify=_verify(settings),
    )
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=create_sts,
        source_credentials=source_credentials,
        role_arn=role.role_arn,
        extra_args=extra_args,
    )
    credentials = DeferredRefreshableCredentials(
        refresh_using=functools.partial(_fetch_and_register, fetcher.fetch_credentials),
        method="assume-role",
    )
    # botocore renews 15 min (advisory) / 10 min (mandatory) before expiry; with sessions as short as
    # 15 min that would mean renewing on every call, so scale the windows to the session length.
    credentials._advisory_refresh_timeout = min(15 * 60, role.session_duration // 3)
    credentials._mandatory_refresh_timeout = min(10 * 60, role.session_duration // 6)
    role_session = botocore.session.Session()
    role_session.register_component("credential_provider", CredentialResolver([_FixedCredentials(credentials)]))
    return boto3.session.Session(botocore_session=role_session, region_name=settings.region)


class _FixedCredentials(CredentialProvider):
    """Hands botocore the assumed-role credentials (which refresh themselves)."""

    METHOD = "assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _create_client_for_fetcher(botocore_session, service_name: str, **kwargs: Any):
    # AssumeRoleCredentialFetcher passes the source credentials as keyword arguments.
    return botocore_session.create_client(service_name, **kwargs)


def _fetch_and_register(fetch):
    credentials = fetch()
    SECRETS.add(credentials.get("secret_key"))
    SECRETS.add(credentials.get("token"))
    return credentials


class AwsClients:
    """The SQS and S3 clients of one input (boto3 clients are thread-safe)."""

    def __init__(self, settings: AwsConnectionSettings) -> None:
        self.settings = settings
        self.session = build_session(settings)
        self.sqs = self.session.client(
            "sqs",
            endpoint_url=settings.sqs_endpoint_url,
            verify=_verify(settings),
            config=_client_config(settings, SQS_READ_TIMEOUT),
        )
        self.s3 = self.session.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            verify=_verify(settings),
            config=_client_config(settings, S3_READ_TIMEOUT),
        )

    def sts(self):
        return self.session.client(
            "sts",
            endpoint_url=self.settings.sts_endpoint_url or self.settings.account.sts_endpoint_url,
            verify=_verify(self.settings),
            config=_client_config(self.settings, S3_READ_TIMEOUT),
        )


def cloudtrail_client(session: boto3.session.Session, settings: AwsConnectionSettings, region: str, endpoint_url):
    """A CloudTrail client for ``region`` without botocore's retries (see paced_client)."""
    return paced_client("cloudtrail", session, settings, region, endpoint_url)


def logs_client(session: boto3.session.Session, settings: AwsConnectionSettings, region: str, endpoint_url):
    """A CloudWatch Logs client for ``region`` without botocore's retries (see paced_client)."""
    return paced_client("logs", session, settings, region, endpoint_url)


def paced_client(
    service: str, session: boto3.session.Session, settings: AwsConnectionSettings, region: str, endpoint_url
):
    """A client without botocore's retries: the inputs that poll an API pace their calls and back off on throttling
    themselves, and a retry botocore made on its own would escape that pacing."""
    no_retries = Config(region_name=region, retries={"mode": "standard", "total_max_attempts": 1})
    config = _client_config(settings, S3_READ_TIMEOUT).merge(no_retries)
    return session.client(
        service, region_name=region, endpoint_url=endpoint_url, verify=_verify(settings), config=config
    )


def check_account_credentials(account: AwsAccount, proxy_url: Optional[str], ca_bundle: Optional[str] = None) -> str:
    """Call STS GetCallerIdentity with the account (through the proxy); return the caller ARN.

    Raises AwsError with an explanation when the credentials do not work.
    """
    settings = AwsConnectionSettings(
        account=account,
        role=None,
        region=STS_REGION_BY_PARTITION[account.partition],
        sts_endpoint_url=account.sts_endpoint_url,
        proxy_url=proxy_url,
        ca_bundle=ca_bundle,
    )
    try:
        session = build_session(settings)
        sts = session.client(
            "sts",
            endpoint_url=account.sts_endpoint_url,
            verify=_verify(settings),
            config=_client_config(settings, 20, max_attempts=2),
        )
        return sts.get_caller_identity()["Arn"]
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(describe_aws_error(exc, "checking the credentials with STS GetCallerIdentity")[0]) from None


class AwsError(Exception):
    """An AWS call failed; the message is already explained and redacted."""


# --- errors explained ---

_CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "AuthFailure",
}
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}
_QUEUE_MISSING_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "AllAccessDisabled"}
_THROTTLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "SlowDown",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "500",
    "502",
    "503",
    "504",
}
_PRINCIPAL = re.compile(r"User: (\S+) is not authorized")
_KMS_KEY = re.compile(r"(arn:aws[\w-]*:kms:[\w-]+:\d{12}:key/[\w-]+)")


def aws_error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")
    return type(exc).__name__


def describe_aws_error(exc: BaseException, doing: str, resource: str = "") -> Tuple[str, bool]:
    """One sentence saying what failed, why, and what to do; and whether trying again can help."""
    code = aws_error_code(exc)
    detail = ""
    target = f" {resource}" if resource else ""
    if isinstance(exc, ClientError):
        detail = str(exc.response.get("Error", {}).get("Message") or "")
        # a call can fail in another service on its way, e.g. STS AssumeRole while refreshing credentials
        if getattr(exc, "operation_name", "") == "AssumeRole":
            doing = f"{doing} (assuming the IAM role with STS AssumeRole)"
    principal_match = _PRINCIPAL.search(detail)
    principal = f" for {principal_match.group(1)}" if principal_match else " for the input's AWS credentials"

    if code == "ResourceNotFoundException" and doing.startswith("reading CloudWatch Logs"):
        return redact(f"{doing}{target} failed: the log group does not exist in this region (ResourceNotFound)"), False
    if code in _NOT_FOUND_CODES:
        message = (
            f"{doing}{target} failed: the object does not exist (NoSuchKey; deleted, expired by a lifecycle "
            "rule, or the notification points at a wrong key)"
        )
        return redact(message), False
    if code == "NoSuchBucket":
        return redact(f"{doing}{target} failed: the bucket does not exist (NoSuchBucket)"), False
    if code in _QUEUE_MISSING_CODES:
        return redact(f"{doing}{target} failed: the SQS queue does not exist; check the queue URL and region"), False
    if code in _DENIED_CODES or "not authorized" in detail:
        if "kms" in detail.lower() or code.startswith("KMS"):
            key = _KMS_KEY.search(detail)
            key_text = key.group(1) if key else "the bucket's KMS key"
            message = (
                f"{doing}{target} failed: KMS access denied; allow kms:Decrypt on {key_text}{principal} "
                "(the log files are encrypted with SSE-KMS)"
            )
        elif doing.startswith("listing"):
            bucket, _, prefix = (resource[len("s3://") :] if resource.startswith("s3://") else resource).partition("/")
            message = (
                f"{doing}{target} failed: access denied (AccessDenied); allow s3:ListBucket on "
                f'arn:aws:s3:::{bucket} (with the condition "s3:prefix" like "{prefix}*"){principal}'
            )
        elif doing.startswith("looking up"):
            message = (
                f"{doing}{target} failed: access denied ({code}); allow cloudtrail:LookupEvents on "
                f'"Resource": "*" (the action has no resource-level permission){principal}'
            )
        elif doing.startswith("reading CloudWatch Logs"):
            message = (
                f"{doing}{target} failed: access denied ({code}); allow logs:FilterLogEvents on the log group "
                f"(arn:aws:logs:<region>:<account>:log-group:<name>:*){principal}"
            )
        elif doing.startswith("reading") and "queue" not in doing:
            bucket_key = resource[len("s3://") :] if resource.startswith("s3://") else resource
            message = (
                f"{doing}{target} failed: access denied (AccessDenied); allow s3:GetObject (and "
                f"s3:GetObjectVersion for versioned buckets) on arn:aws:s3:::{bucket_key}{principal}"
            )
        else:
            message = (
                f"{doing}{target} failed: access denied ({code}); allow sqs:ReceiveMessage, sqs:DeleteMessage, "
                f"sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on the queue{principal}"
            )
        return redact(message), True
    if code in _CREDENTIAL_CODES:
        return (
            redact(
                f"{doing}{target} failed: AWS rejected the credentials ({code}); check the account's access "
                "keys or the role under Configuration"
            ),
            True,
        )
    if code in _THROTTLE_CODES:
        return redact(f"{doing}{target} failed: AWS is throttling or unavailable ({code}), will retry"), True
    if isinstance(exc, NoCredentialsError):
        return (
            redact(
                f"{doing}{target} failed: no AWS credentials found in the default chain (instance role, "
                "environment, ~/.aws); choose an account with access keys or attach a role to the host"
            ),
            True,
        )
    if isinstance(exc, ProxyConnectionError):
        return redact(f"{doing}{target} failed: cannot connect to the proxy ({exc}), will retry"), True
    if isinstance(exc, BotoCoreError):
        return redact(f"{doing}{target} failed: {type(exc).__name__}: {exc}"), True
    if isinstance(exc, ClientError):
        return redact(f"{doing}{target} failed: {code}: {detail}"), True
    return redact(f"{doing}{target} failed: {type(exc).__name__}: {exc}"), True


def is_transient(exc: BaseException) -> bool:
    """Network trouble, throttling or a 5xx: the same call can work later without anyone changing anything."""
    if isinstance(exc, ClientError):
        return aws_error_code(exc) in _THROTTLE_CODES
    return isinstance(exc, BotoCoreError) and not isinstance(exc, NoCredentialsError)
