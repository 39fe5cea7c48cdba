"""AWS error explanations (pure). Credentials, endpoints and proxies are exercised against moto in
tests/integration/test_aws_clients.py."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ProxyConnectionError

from ta_aws_cloudtrail.aws import describe_aws_error, is_transient
from ta_aws_cloudtrail.logs import SECRETS


def client_error(code, message="", status=400, operation="GetObject"):
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


def test_no_such_key_is_explained_and_not_retryable():
    text, retryable = describe_aws_error(client_error("NoSuchKey", status=404), "reading", "s3://b/AWSLogs/k.json.gz")
    assert "s3://b/AWSLogs/k.json.gz" in text and "does not exist" in text and not retryable


def test_access_denied_on_an_object_names_the_permission_and_the_resource():
    message = "User: arn:aws:sts::123456789012:assumed-role/Reader/s is not authorized to perform: s3:GetObject"
    text, retryable = describe_aws_error(
        client_error("AccessDenied", message, 403), "reading", "s3://trail-bucket/AWSLogs/x"
    )
    assert "s3:GetObject" in text and "arn:aws:s3:::trail-bucket/AWSLogs/x" in text
    assert "arn:aws:sts::123456789012:assumed-role/Reader/s" in text and retryable


def test_kms_access_denied_names_the_key():
    message = (
        "User: arn:aws:iam::123456789012:user/splunk is not authorized to perform: kms:Decrypt on resource: "
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    text, _ = describe_aws_error(client_error("AccessDenied", message, 403), "reading", "s3://b/k")
    assert (
        "kms:Decrypt" in text and "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" in text
    )
    assert "SSE-KMS" in text


def test_queue_errors():
    text, retryable = describe_aws_error(
        client_error("AWS.SimpleQueueService.NonExistentQueue", operation="ReceiveMessage"), "receiving from the queue"
    )
    assert "does not exist" in text and not retryable
    text, _ = describe_aws_error(client_error("AccessDenied", "", 403, "ReceiveMessage"), "receiving from the queue")
    assert "sqs:ReceiveMessage" in text and "sqs:ChangeMessageVisibility" in text
    # the start-up check of the queue is "reading" too, but of the queue: SQS permissions, not S3's
    text, _ = describe_aws_error(
        client_error("AccessDenied", "", 403, "GetQueueAttributes"),
        "reading the attributes of queue",
        "https://sqs.us-east-1.amazonaws.com/123456789012/trail",
    )
    assert "sqs:GetQueueAttributes" in text and "s3:" not in text


def test_lookup_events_denied_names_the_action_on_every_resource():
    text, _ = describe_aws_error(client_error("AccessDeniedException", "", 400, "LookupEvents"), "looking up events")
    assert 'allow cloudtrail:LookupEvents on "Resource": "*"' in text


@pytest.mark.parametrize("code", ["InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken"])
def test_credential_errors(code):
    text, _ = describe_aws_error(client_error(code, status=403), "receiving from the queue")
    assert "rejected the credentials" in text and code in text
    assert not is_transient(client_error(code, status=403))


@pytest.mark.parametrize("code", ["SlowDown", "Throttling", "ServiceUnavailable", "InternalError", "503"])
def test_throttling_and_5xx_are_transient(code):
    error = client_error(code, status=503)
    assert is_transient(error)
    assert "will retry" in describe_aws_error(error, "reading", "s3://b/k")[0]


def test_network_errors_are_transient_and_proxy_credentials_are_redacted():
    assert is_transient(EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com/"))
    SECRETS.add("pr0xy-pa55word")
    error = ProxyConnectionError(proxy_url="http://user:pr0xy-pa55word@proxy:3128", error="refused")
    text, retryable = describe_aws_error(error, "receiving from the queue")
    assert "pr0xy-pa55word" not in text and "proxy" in text and retryable
    assert not is_transient(NoCredentialsError())
    assert "default chain" in describe_aws_error(NoCredentialsError(), "receiving from the queue")[0]
