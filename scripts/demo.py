"""The add-on's main job on an embedded stand-in for AWS and splunkd.

Starts moto (S3, SQS, SNS, EventBridge, CloudFormation) and the splunkd REST emulator, creates a trail-like bucket
per notification shape, the SQS queue and its dead-letter queue from aws/cloudtrail-queue.yaml (deployed into
moto's CloudFormation), SNS topics and an EventBridge rule; uploads
CloudTrail log files (real public records and generated ones) and lets each shape announce them; then runs the
built input exactly as splunkd runs it and prints what it wrote.

Run with `make demo` (builds the add-on first). Nothing leaves 127.0.0.1.
"""

import argparse
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(REPO_ROOT, "tests"), os.path.join(REPO_ROOT, "tests", "integration")]

from environment import input_params, seed  # noqa: E402
from expectations import stratus_records  # noqa: E402

from harness.aws import AwsTestEnv, MotoServer, QueueInfo, cloudtrail_key  # noqa: E402
from harness.cloudtrail_data import make_records  # noqa: E402
from harness.modinput import ModularInputRunner  # noqa: E402
from harness.splunkd import SplunkdEmulator  # noqa: E402

ADDON = os.path.join(REPO_ROOT, "output", "TA_aws_cloudtrail")
SHAPES = ("s3", "sns", "sns_raw", "cloudtrail_sns", "eventbridge")


def queue_from_template(moto, aws, bucket):
    """The queue and its dead-letter queue from aws/cloudtrail-queue.yaml (S3 notifications of ``bucket``),
    deployed into moto's CloudFormation; the bucket's notification is set from the stack's output, as the
    README's command does."""
    cloudformation = moto.client("cloudformation")
    with open(os.path.join(REPO_ROOT, "aws", "cloudtrail-queue.yaml"), encoding="utf-8") as template:
        cloudformation.create_stack(
            StackName="demo-cloudtrail-queue",
            TemplateBody=template.read(),
            Parameters=[{"ParameterKey": "BucketName", "ParameterValue": bucket}],
        )
    stack = cloudformation.describe_stacks(StackName="demo-cloudtrail-queue")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    aws.s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=json.loads(outputs["BucketNotificationConfiguration"])
    )
    dlq_url = outputs["DeadLetterQueueUrl"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    dead_letter = QueueInfo(name=dlq_arn.rsplit(":", 1)[1], url=dlq_url, arn=dlq_arn)
    arn = outputs["QueueArn"]
    return QueueInfo(name=arn.rsplit(":", 1)[1], url=outputs["QueueUrl"], arn=arn, dlq=dead_letter)


def build_routes(aws, queue, buckets):
    """One bucket per shape, each announcing its objects to the queue its own way (the "s3" bucket's
    notification comes with the queue's template)."""
    topics = {}
    for shape in SHAPES:
        if shape not in buckets:
            buckets[shape] = aws.create_bucket(f"demo-trail-{shape.replace('_', '-')}")
    for shape, raw in (("sns", False), ("sns_raw", True), ("cloudtrail_sns", False)):
        topics[shape] = aws.create_topic(f"demo-{shape.replace('_', '-')}")
        aws.subscribe_queue(topics[shape], queue, raw=raw)
    aws.configure_bucket_notifications(buckets["sns"], topic_arn=topics["sns"])
    aws.configure_bucket_notifications(buckets["sns_raw"], topic_arn=topics["sns_raw"])
    aws.configure_bucket_notifications(buckets["eventbridge"], eventbridge=True)
    aws.route_eventbridge_to_queue(queue, bucket=buckets["eventbridge"])
    return buckets, topics


def upload(aws, buckets, topics, objects_per_shape, records_per_object):
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    recent = now - timedelta(hours=1)
    real = stratus_records()
    expected = Counter()
    index = 0
    for shape, bucket in buckets.items():
        keys = []
        for n in range(objects_per_shape):
            if n == 0:
                records = real  # real CloudTrail records from public attack simulations
            else:
                # generated records of the last hour, so that the metrics' event lag reads like a live trail's
                records = make_records(
                    records_per_object, seed=rng.randrange(1 << 30), first_index=index, start_time=recent
                )
                index += records_per_object
            info = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=now, rng=rng), records)
            keys.append(info.key)
            expected[shape] += len(records)
        insight = make_records(3, seed=1, first_index=index, start_time=recent)
        index += 3
        keys.append(aws.put_cloudtrail_object(bucket, cloudtrail_key("insight", when=now, rng=rng), insight).key)
        expected[shape] += 3
        digest = json.dumps({"digestEndTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "logFiles": []}).encode()
        keys.append(aws.put_cloudtrail_object(bucket, cloudtrail_key("digest", when=now, rng=rng), digest).key)
        if shape == "cloudtrail_sns":  # CloudTrail's own notification, several keys per message
            for start in range(0, len(keys), 5):
                aws.publish_cloudtrail_notification(topics[shape], bucket, keys[start : start + 5])
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the built input on an embedded AWS and splunkd.")
    parser.add_argument("--objects-per-shape", type=int, default=10)
    parser.add_argument("--records-per-object", type=int, default=1000)
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(ADDON, "bin", "aws_cloudtrail_sqs.py")):
        print("Build the add-on first: make package", file=sys.stderr)
        return 2

    # the demo's SPLUNK_HOME (logs) stays for reading until the next run or `make clean`
    workdir = os.path.join(REPO_ROOT, ".demo")
    shutil.rmtree(workdir, ignore_errors=True)
    with MotoServer() as moto, SplunkdEmulator(seed(settings={"logging": {"loglevel": "INFO"}})) as splunkd:
        aws = AwsTestEnv(moto)
        buckets = {"s3": aws.create_bucket("demo-trail-s3")}
        queue = queue_from_template(moto, aws, buckets["s3"])
        buckets, topics = build_routes(aws, queue, buckets)
        print(f"moto (AWS) on {moto.endpoint_url}, splunkd emulator on {splunkd.server_uri}")
        print(f"queue {queue.url} (dead-letter queue {queue.dlq.name}); buckets: {', '.join(buckets.values())}")
        expected = upload(aws, buckets, topics, args.objects_per_shape, args.records_per_object)
        total = sum(expected.values())
        print(f"uploaded {total} records in {args.objects_per_shape + 2} objects per shape (one digest each)\n")

        runner = ModularInputRunner(ADDON, workdir)
        started = time.monotonic()
        running = runner.start("demo", input_params(moto, queue, visibility_timeout=300), splunkd)
        running.wait_for_events(total, timeout=600)
        first_to_last = time.monotonic() - started
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and aws.queue_counts(queue).not_visible:
            time.sleep(0.2)
        time.sleep(1)
        returncode = running.terminate(timeout=60)
        queue_left, dlq_left = aws.queue_counts(queue), aws.queue_counts(queue.dlq)

    shape_of_bucket = {bucket: shape for shape, bucket in buckets.items()}
    by_shape = Counter(shape_of_bucket[e.source.split("/")[2]] for e in running.events)
    duplicates = sum(n - 1 for n in Counter((e.source, e.data) for e in running.events).values())
    print(f"{'shape':<16}{'expected':>10}{'written':>10}")
    for shape in SHAPES:
        print(f"{shape:<16}{expected[shape]:>10}{by_shape[shape]:>10}")
    print(f"{'total':<16}{total:>10}{running.event_count:>10}   duplicates: {duplicates}")
    print(
        f"\n{running.event_count} events in {first_to_last:.1f} s from process start: "
        f"{running.event_count / first_to_last:,.0f} events/s (includes start-up and SQS/S3 round trips)"
    )
    print(
        f"queue after the run: {queue_left.visible} visible, {queue_left.not_visible} in flight; "
        f"dead-letter queue: {dlq_left.visible}"
    )
    metrics = [line for line in running.log_text().splitlines() if "metrics input=" in line and " final " in line]
    if metrics:
        print("input metrics: " + metrics[-1].split("| ", 1)[1])
        print(
            "  (event_lag_s: now minus the newest eventTime written, under an hour for the generated records; "
            "sqs_lag_s: now minus the newest message's send time)"
        )
    print(
        f"exit code {returncode} after SIGTERM; stream complete: {running.stream_complete}; "
        f"protocol errors: {len(running.protocol_errors)}"
    )
    print("\nsample events:")
    for event in running.events[:: max(1, len(running.events) // 3)][:3]:
        data = event.data if len(event.data) < 300 else event.data[:300] + "…"
        print(f"  time={event.time} source={event.source}")
        print(f"  sourcetype={event.sourcetype} index={event.index}\n  {data}\n")
    print(f"logs: {os.path.relpath(runner.log_dir, REPO_ROOT)} (kept until the next demo or make clean)")
    ok = (
        returncode == 0
        and running.event_count == total
        and duplicates == 0
        and all(by_shape[s] == expected[s] for s in SHAPES)
        and queue_left.visible + queue_left.not_visible + dlq_left.visible == 0
    )
    print("DEMO OK" if ok else "DEMO FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
