"""Access keys, AssumeRole with ExternalId, and the proxy tab, checked on the wire (proxies in front of moto)."""

import random
import re
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from environment import (
    ACCESS_KEY_ID,
    EXTERNAL_ID,
    PROXY_PASSWORD,
    SECRET_ACCESS_KEY,
    input_params,
    proxy_settings,
    seed,
)
from expectations import assert_exact_events

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records
from harness.proxies import FaultInjectingProxy, ForwardProxy, SeenRequest
from harness.splunkd import SplunkdEmulator

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
ROLE_ARN = "arn:aws:iam::123456789012:role/SplunkCloudTrailReader"
_AUTH = re.compile(r"Credential=([^/]+)/(\d{8})/([\w-]+)/([\w-]+)/aws4_request, SignedHeaders=([^,]+), Signature=(\w+)")


def signed_with(request: SeenRequest, secret: str) -> str:
    """Re-sign the recorded request with `secret`; return the access key id if the signature matches, else ''."""
    access_key, _, region, service, signed_headers, signature = _AUTH.search(request.headers["authorization"]).groups()
    headers = {name: request.headers[name] for name in signed_headers.split(";")}
    aws_request = AWSRequest(
        method=request.method, url=f"http://{request.headers['host']}{request.path}", data=request.body, headers=headers
    )
    aws_request.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(access_key, secret), service, region)
    string_to_sign = signer.string_to_sign(aws_request, signer.canonical_request(aws_request))
    return access_key if signer.signature(string_to_sign, aws_request) == signature else ""


def ingest_one_object(aws, start_input, name, queue, params):
    bucket = aws.create_bucket()
    records = make_records(50, seed=21)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(3)), records)
    aws.send_s3_event(queue, [obj])
    running = start_input(name, params)
    running.wait_for_events(len(records), timeout=60)
    time.sleep(0.5)
    assert running.terminate(timeout=30) == 0, running.describe()
    assert_exact_events(running.events, {obj.source: records})


def test_requests_are_signed_with_the_decrypted_secret_access_key(moto, aws, start_input):
    with FaultInjectingProxy(moto.endpoint_url) as wire:
        queue = aws.create_queue()
        params = input_params(moto, queue, sqs_endpoint_url=wire.url, s3_endpoint_url=wire.url)
        ingest_one_object(aws, start_input, "keys", queue, params)
        signed = [r for r in wire.requests if "authorization" in r.headers]
    assert signed, "the input's AWS calls went through the recording proxy"
    # every call carries the account's key id and a signature made with the secret from storage/passwords
    assert {signed_with(r, SECRET_ACCESS_KEY) for r in signed} == {ACCESS_KEY_ID}


def test_assume_role_sends_external_id_and_duration_and_uses_the_role_credentials(moto, aws, start_input, artifacts):
    role_seed = seed(
        iam_roles={"reader": {"role_arn": ROLE_ARN, "external_id": EXTERNAL_ID, "session_duration": "900"}}
    )
    with SplunkdEmulator(role_seed) as splunkd, FaultInjectingProxy(moto.endpoint_url) as wire:
        artifacts.secrets.append(splunkd.session_key)
        queue = aws.create_queue()
        params = input_params(
            moto,
            queue,
            aws_iam_role="reader",
            sqs_endpoint_url=wire.url,
            s3_endpoint_url=wire.url,
            sts_endpoint_url=wire.url,
        )
        bucket = aws.create_bucket()
        records = make_records(30, seed=22)
        obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(4)), records)
        aws.send_s3_event(queue, [obj])
        running = start_input("role", params, splunkd_endpoint=splunkd)
        running.wait_for_events(len(records), timeout=60)
        assert running.terminate(timeout=30) == 0
        assert_exact_events(running.events, {obj.source: records})
        calls = list(wire.requests)

    assume = [parse_qs(r.body.decode()) for r in calls if b"Action=AssumeRole" in r.body]
    assert len(assume) == 1
    assert assume[0]["RoleArn"] == [ROLE_ARN] and assume[0]["ExternalId"] == [EXTERNAL_ID]
    assert assume[0]["DurationSeconds"] == ["900"] and assume[0]["RoleSessionName"] == ["splunk-ta-aws-cloudtrail-role"]
    # the AssumeRole call is signed with the account's keys, S3 and SQS calls with the role's temporary keys
    key_ids = {_AUTH.search(r.headers["authorization"]).group(1) for r in calls if "authorization" in r.headers}
    assert ACCESS_KEY_ID in key_ids and len(key_ids) == 2
    role_calls = [r for r in calls if "authorization" in r.headers and ACCESS_KEY_ID not in r.headers["authorization"]]
    assert all("x-amz-security-token" in r.headers for r in role_calls)
    artifacts.secrets.extend({r.headers["x-amz-security-token"] for r in role_calls})  # for the secret scan


def test_the_proxy_tab_settings_route_every_aws_call_through_the_proxy_with_its_credentials(
    moto, aws, start_input, artifacts
):
    with ForwardProxy("proxy-user", PROXY_PASSWORD) as proxy:
        proxy_seed = seed(
            settings={
                "logging": {"loglevel": "DEBUG"},
                "proxy": proxy_settings(proxy.port),
            }
        )
        with SplunkdEmulator(proxy_seed) as splunkd:
            artifacts.secrets.append(splunkd.session_key)
            queue = aws.create_queue()
            bucket = aws.create_bucket()
            records = make_records(40, seed=23)
            obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(5)), records)
            aws.send_s3_event(queue, [obj])
            running = start_input("proxied", input_params(moto, queue), splunkd_endpoint=splunkd)
            running.wait_for_events(len(records), timeout=60)
            assert running.terminate(timeout=30) == 0
            assert_exact_events(running.events, {obj.source: records})
        seen = proxy.targets()
    assert seen and all(authorized for _, _, authorized in seen), seen[:3]
    targets = " ".join(target for _, target, _ in seen)
    assert moto.endpoint_url in targets and f"/{bucket}/" in targets  # SQS and S3 both went through it
