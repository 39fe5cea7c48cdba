"""Bucket and account allowlists, and TLS verification of AWS endpoints (on by default, custom CA bundle)."""

import random
import ssl
import time
from datetime import datetime, timezone

from environment import input_params
from expectations import assert_exact_events, error_lines

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records
from harness.local_ca import LocalCA
from harness.proxies import FaultInjectingProxy

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def final_metrics(log):
    return next(line for line in log.splitlines() if "metrics input=" in line and " final " in line)


def test_buckets_and_accounts_outside_the_allowlists_are_rejected_logged_and_counted(moto, aws, start_input):
    rng = random.Random(12)
    allowed_bucket, other_bucket = aws.create_bucket(), aws.create_bucket()
    queue = aws.create_queue()
    trusted = make_records(30, seed=1, account="111111111111")
    mixed = make_records(30, seed=2, account="111111111111", first_index=100)
    for record in mixed[:10]:
        record["recipientAccountId"] = "999999999999"  # records of another account inside a trusted file
    good = aws.put_cloudtrail_object(allowed_bucket, cloudtrail_key(when=NOW, rng=rng, account="111111111111"), trusted)
    with_foreign_records = aws.put_cloudtrail_object(
        allowed_bucket, cloudtrail_key(when=NOW, rng=rng, account="111111111111"), mixed
    )
    foreign_account = aws.put_cloudtrail_object(
        allowed_bucket, cloudtrail_key(when=NOW, rng=rng, account="222222222222"), make_records(5, seed=3)
    )
    foreign_bucket = aws.put_cloudtrail_object(
        other_bucket, cloudtrail_key(when=NOW, rng=rng, account="111111111111"), make_records(5, seed=4)
    )
    for info in (good, with_foreign_records, foreign_account, foreign_bucket):
        aws.send_s3_event(queue, [info])

    params = input_params(moto, queue, allowed_buckets=allowed_bucket, allowed_accounts="111111111111")
    running = start_input("allowlists", params)
    running.wait_for_events(50, timeout=60)
    aws.wait_until_drained(queue, 60)
    time.sleep(0.5)
    assert running.terminate() == 0
    assert_exact_events(running.events, {good.source: trusted, with_foreign_records.source: mixed[10:]})
    log = running.log_text()
    assert f"Rejected {foreign_bucket.source}" in log and "bucket not in the allowed buckets" in log
    assert f"Rejected {foreign_account.source}" in log and "account 222222222222 not in the allowed account IDs" in log
    metrics = final_metrics(log)
    assert "objects_rejected=2" in metrics and "records_rejected=10" in metrics
    assert aws.queue_counts(queue.dlq).visible == 0 and not error_lines(log)


def test_tls_is_verified_and_a_custom_ca_bundle_is_honoured(moto, aws, start_input, tmp_path):
    ca = LocalCA(tmp_path)
    cert_path, key_path = ca.issue_server_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    bucket = aws.create_bucket()
    records = make_records(25, seed=5)
    obj = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=random.Random(13)), records)
    with FaultInjectingProxy(moto.endpoint_url, tls_context=context) as https_s3:
        assert https_s3.url.startswith("https://")
        untrusted_queue = aws.create_queue(max_receive_count=2)
        aws.send_s3_event(untrusted_queue, [obj])
        params = input_params(moto, untrusted_queue, s3_endpoint_url=https_s3.url, max_receive_count=2)
        running = start_input("tls_default", params)
        running.wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in running.log_text(), timeout=60)
        assert running.terminate() == 0 and running.event_count == 0
        assert https_s3.count(lambda r: r.method == "GET") == 0  # the handshake failed: no request got through

        trusted_queue = aws.create_queue()
        aws.send_s3_event(trusted_queue, [obj])
        params = input_params(moto, trusted_queue, s3_endpoint_url=https_s3.url, ca_bundle=ca.ca_bundle_path)
        running = start_input("tls_ca_bundle", params)
        running.wait_for_events(25, timeout=60)
        assert running.terminate() == 0
    assert_exact_events(running.events, {obj.source: records})
