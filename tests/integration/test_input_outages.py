"""AWS and KV store outages: the input backs off, logs one line per outage kind, recovers by itself, loses nothing.

Faults are injected on the wire by a reverse proxy in front of moto (or by the splunkd emulator itself)."""

import json
import random
import re
import time
from datetime import datetime, timezone

import pytest
from environment import EXTERNAL_ID, input_params, seed
from expectations import assert_exact_events, error_lines

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records
from harness.proxies import FaultInjectingProxy, Rule, s3_error, sqs_error, target_is
from harness.splunkd import SplunkdEmulator

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RNG = random.Random(55)


def upload(aws, bucket, count, seed_base, records_each=200):
    objects = {}
    for n in range(count):
        records = make_records(records_each, seed=seed_base + n, first_index=(seed_base + n) * 1000)
        info = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), records)
        objects[info] = records
    return objects


def outage_warnings(log, kind_pattern):
    """WARNING lines that open an outage of this kind (later failures of the kind are at DEBUG)."""
    return [
        line
        for line in log.splitlines()
        if "log_level=WARNING" in line and "further failures of this kind" in line and re.search(kind_pattern, line)
    ]


def test_s3_errors_and_throttling_are_retried_by_botocore_then_by_the_queue(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    objects = upload(aws, bucket, 6, 100)
    with FaultInjectingProxy(moto.endpoint_url) as wire:
        # a short burst botocore's own retries absorb, then a longer outage that makes messages fail
        wire.add_rule(
            Rule(
                match=lambda r: r.method == "GET" and f"/{bucket}/" in r.path,
                status=503,
                body=s3_error("SlowDown", "Please reduce your request rate."),
                remaining=2,
            )
        )
        params = input_params(moto, queue, s3_endpoint_url=wire.url, sqs_endpoint_url=wire.url)
        wire.add_rule(
            Rule(
                match=target_is("ReceiveMessage"),
                status=400,
                body=sqs_error("RequestThrottled", "Rate exceeded"),
                content_type="application/x-amz-json-1.0",
                remaining=2,
            )
        )
        for info in list(objects)[:3]:
            aws.send_s3_event(queue, [info])
        running = start_input("s3_errors", params)
        running.wait_for_events(600, timeout=60)
        long_outage = wire.add_rule(
            Rule(
                match=lambda r: r.method == "GET" and f"/{bucket}/" in r.path,
                status=500,
                body=s3_error("InternalError", "We encountered an internal error."),
                remaining=30,
            )
        )
        for info in list(objects)[3:]:
            aws.send_s3_event(queue, [info])
        running.wait_for_events(1200, timeout=120)
        aws.wait_until_drained(queue, 60)
        assert running.terminate() == 0
    assert long_outage.hits == 30
    assert_exact_events(running.events, {i.source: r for i, r in objects.items()})
    log = running.log_text()
    assert len(outage_warnings(log, r"s3_InternalError|InternalError")) == 1, outage_warnings(log, ".")
    assert "Recovered from s3_InternalError" in log
    assert not error_lines(log) and "Traceback" not in log
    assert aws.queue_counts(queue.dlq).visible == 0


@pytest.mark.slow
def test_sqs_unreachable_for_a_minute(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    before, during = upload(aws, bucket, 3, 200), upload(aws, bucket, 3, 300)
    with FaultInjectingProxy(moto.endpoint_url) as wire:
        params = input_params(moto, queue, sqs_endpoint_url=wire.url)
        for info in before:
            aws.send_s3_event(queue, [info])
        running = start_input("sqs_down", params)
        running.wait_for_events(600, timeout=60)
        wire.down()
        for info in during:  # announced while the input cannot reach SQS
            aws.send_s3_event(queue, [info])
        time.sleep(60)
        assert running.event_count == 600
        wire.up()
        running.wait_for_events(1200, timeout=120)
        aws.wait_until_drained(queue, 60)
        assert running.terminate() == 0
    assert_exact_events(running.events, {i.source: r for i, r in {**before, **during}.items()})
    log = running.log_text()
    receive_outages = outage_warnings(log, r"receiving from the queue")
    assert len(receive_outages) == 1, receive_outages
    assert re.search(r"Recovered from sqs_receive \(\w+\) after \d+ failures over \d+ s", log)
    assert not error_lines(log)


def test_sts_failing_to_assume_the_role(moto, aws, start_input, artifacts):
    role = {"role_arn": "arn:aws:iam::123456789012:role/CloudTrailReader", "external_id": EXTERNAL_ID}
    with SplunkdEmulator(seed(iam_roles={"reader": role})) as splunkd, FaultInjectingProxy(moto.endpoint_url) as wire:
        artifacts.secrets.append(splunkd.session_key)
        bucket = aws.create_bucket()
        queue = aws.create_queue()
        objects = upload(aws, bucket, 2, 400)
        for info in objects:
            aws.send_s3_event(queue, [info])
        sts_down = wire.add_rule(
            Rule(
                match=lambda r: b"Action=AssumeRole" in r.body,
                status=503,
                body=s3_error("ServiceUnavailable", "Service is unavailable"),
                remaining=12,
            )
        )
        params = input_params(moto, queue, aws_iam_role="reader", sts_endpoint_url=wire.url)
        running = start_input("sts_down", params, splunkd_endpoint=splunkd)
        running.wait_for_events(400, timeout=120)
        aws.wait_until_drained(queue, 60)
        assert running.terminate() == 0
    assert sts_down.hits == 12  # botocore retried each attempt, the input waited and tried again
    assert_exact_events(running.events, {i.source: r for i, r in objects.items()})
    log = running.log_text()
    waits = [line for line in log.splitlines() if "log_level=WARNING" in line and "AssumeRole" in line]
    assert len(waits) == 1, waits
    assert not error_lines(log)


@pytest.mark.parametrize("outage", ["503", "gone"])
def test_kv_store_outage_keeps_ingestion_going_and_saves_progress_after(outage, moto, aws, splunkd, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    objects = upload(aws, bucket, 4, 500)
    infos = list(objects)
    aws.send_s3_event(queue, [infos[0]])
    running = start_input(f"kv_{outage}", input_params(moto, queue))
    running.wait_for_events(200, timeout=60)
    aws.wait_until_drained(queue, 30)
    if outage == "503":
        splunkd.set_kv_outage(503)
    else:
        splunkd.pause()
    for info in infos[1:3]:
        aws.send_s3_event(queue, [info])
    running.wait_for_events(600, timeout=60)  # ingested while the KV store is out
    aws.wait_until_drained(queue, 30)  # and deleted: events are written, at-least-once
    if outage == "503":
        splunkd.set_kv_outage(None)
    else:
        splunkd.resume()
    aws.send_s3_event(queue, [infos[3]])
    running.wait_for_events(800, timeout=60)
    running.wait_until(lambda: "KV store is available again" in running.log_text(), timeout=30)
    assert running.terminate() == 0
    assert_exact_events(running.events, {i.source: r for i, r in objects.items()})
    log = running.log_text()
    assert sum("KV store unavailable" in line for line in log.splitlines() if "log_level=WARNING" in line) == 1
    docs = {d["object_key"]: d for d in splunkd.kv_documents("ta_aws_cloudtrail_progress")}
    assert all(docs[i.key]["done"] and docs[i.key]["records_done"] == 200 for i in infos)
    assert not error_lines(log)
    assert json.loads(running.events[-1].data)["eventID"]
