"""SNS signature validation in the built input: signed envelopes (SignatureVersion 1 and 2) are ingested; forged,
unsigned and foreign-certificate ones are rejected, counted and left to the dead-letter queue. The signing
certificate comes from a local HTTPS server (a local CA), fetched directly or through the proxy tab's proxy."""

import json
import random
import ssl
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from environment import PROXY_PASSWORD, input_params, proxy_settings, seed
from expectations import assert_exact_events, wait_for

from harness.aws import cloudtrail_key, s3_event_body
from harness.cloudtrail_data import make_records
from harness.local_ca import LocalCA, sign_sns_message
from harness.proxies import ForwardProxy
from harness.splunkd import SplunkdEmulator

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
CERT_PATH = "/SimpleNotificationService-0123456789abcdef.pem"
LOCAL_CERT_HOSTS = {"TA_AWS_CLOUDTRAIL_SNS_CERT_HOST_PATTERN": r"^127\.0\.0\.1$"}


class PemServer:
    """HTTPS on 127.0.0.1 serving one PEM file, counting requests."""

    def __init__(self, cert_path, key_path, pem):
        server = self
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hits += 1
                body = pem if self.path == CERT_PATH else b""
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def signing(tmp_path):
    ca = LocalCA(tmp_path)
    cert_path, key_path = ca.issue_server_cert("127.0.0.1")
    signer = ca.issue_signing_cert()
    server = PemServer(cert_path, key_path, signer.pem)
    yield ca, signer, server
    server.stop()


def envelope(message, cert_url):
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:cloudtrail-notifications",
        "Subject": "Amazon S3 Notification",
        "Message": message,
        "Timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def test_signed_envelopes_are_ingested_and_forged_ones_rejected(moto, aws, splunkd, start_input, signing):
    ca, signer, server = signing
    cert_url = f"https://127.0.0.1:{server.port}{CERT_PATH}"
    bucket = aws.create_bucket()
    queue = aws.create_queue(max_receive_count=2)
    rng = random.Random(8)
    objects = {}
    for n in range(5):
        records = make_records(20, seed=80 + n, first_index=n * 100)
        objects[aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=rng), records)] = records
    v1_obj, v2_obj, forged_obj, unsigned_obj, foreign_obj = objects

    aws.send_raw(
        queue, json.dumps(sign_sns_message(envelope(s3_event_body([v1_obj]), cert_url), signer.private_key, "1"))
    )
    aws.send_raw(
        queue, json.dumps(sign_sns_message(envelope(s3_event_body([v2_obj]), cert_url), signer.private_key, "2"))
    )
    forged = sign_sns_message(envelope(s3_event_body([v1_obj]), cert_url), signer.private_key, "2")
    forged["Message"] = s3_event_body([forged_obj])  # points at another object after signing
    unsigned = envelope(s3_event_body([unsigned_obj]), cert_url)
    foreign = sign_sns_message(
        envelope(s3_event_body([foreign_obj]), "https://sns.example.com/cert.pem"), signer.private_key, "2"
    )
    bad_ids = {aws.send_raw(queue, json.dumps(body)).message_id for body in (forged, unsigned, foreign)}

    params = input_params(moto, queue, sns_signature_validation=1, ca_bundle=ca.ca_bundle_path, max_receive_count=2)
    running = start_input("sns_sig", params, extra_env=LOCAL_CERT_HOSTS)
    running.wait_for_events(40, timeout=60)
    wait_for(lambda: aws.queue_counts(queue.dlq).visible == 3, 60, "the three rejected messages in the DLQ")
    assert running.terminate() == 0
    assert_exact_events(running.events, {v1_obj.source: objects[v1_obj], v2_obj.source: objects[v2_obj]})
    assert {m["MessageId"] for m in aws.drain(queue.dlq)} == bad_ids
    assert server.hits == 1  # fetched once, then cached
    log = running.log_text()
    assert log.count("SNS signature rejected") == 6  # 3 messages x 2 receives
    assert "sns_rejected=6" in next(line for line in log.splitlines() if " final " in line)


def test_the_signing_certificate_is_fetched_through_the_proxy(moto, aws, start_input, signing, artifacts):
    ca, signer, server = signing
    cert_url = f"https://127.0.0.1:{server.port}{CERT_PATH}"
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    records = make_records(10, seed=90)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(9)), records)
    aws.send_raw(queue, json.dumps(sign_sns_message(envelope(s3_event_body([obj]), cert_url), signer.private_key, "2")))
    with ForwardProxy("proxy-user", PROXY_PASSWORD) as proxy:
        settings = {
            "proxy": proxy_settings(proxy.port),
        }
        with SplunkdEmulator(seed(settings=settings)) as splunkd:
            artifacts.secrets.append(splunkd.session_key)
            params = input_params(moto, queue, sns_signature_validation=1, ca_bundle=ca.ca_bundle_path)
            running = start_input("sns_proxy", params, splunkd_endpoint=splunkd, extra_env=LOCAL_CERT_HOSTS)
            running.wait_for_events(10, timeout=60)
            assert running.terminate() == 0
        tunnels = [(method, target, ok) for method, target, ok in proxy.targets() if method == "CONNECT"]
    assert_exact_events(running.events, {obj.source: records})
    assert tunnels == [("CONNECT", f"127.0.0.1:{server.port}", True)]
