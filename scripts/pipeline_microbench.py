"""Microbenchmark of the hot path: gzipped CloudTrail object bytes -> modular-input XML events.

Run by hand, on an otherwise idle machine:

    python scripts/pipeline_microbench.py [--objects 40] [--rss-gib 1.0] [--profile]

It generates realistic CloudTrail objects in memory (1,000 records each, ~1.3 KB per record with
nested requestParameters, non-ASCII and XML-special characters, a few 50-256 KB records), gzips them,
and prints records/s on one core for each stage, the naive splunklib pipeline for comparison, and the
peak RSS while streaming one object of >= 1 GiB decompressed that is generated on the fly.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import os
import pstats
import random
import resource
import sys
import time
import uuid
import zlib
from typing import Callable, Iterator, List, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "package", "bin"))

from splunklib.modularinput import Event, EventWriter  # noqa: E402

from ta_aws_cloudtrail.events import EventFormatter, EventSink, event_time  # noqa: E402
from ta_aws_cloudtrail.objects import iter_records  # noqa: E402

RECORDS_PER_OBJECT = 1000
CHUNK_BYTES = 1024 * 1024  # what the input reads from S3 per iter_chunks() step
BATCH_EVENTS = 500  # events per EventSink.write
MAX_DECOMPRESSED = 4 * 1024**3
STANZA = "aws_cloudtrail_sqs://bench"

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "aws-cli/2.13.25 Python/3.11.6 Linux/5.15.0-1049-aws exe/x86_64.ubuntu.22 prompt/off command/s3api.get-object",
    "Boto3/1.28.62 md/Botocore#1.31.62 ua/2.0 os/linux#5.10.196 md/arch#x86_64 lang/python#3.9.16 Botocore/1.31.62",
    "AWS Internal",
    "console.amazonaws.com",
    "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10.184 OpenJDK_64-Bit_Server_VM/25.372-b08]",
    "Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-aws/5.19.0 <dev> & <ops>",
]
# Non-ASCII (and XML-special) user agents, used for the --non-ascii-percent share of records.
NON_ASCII_USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Gecko/20100101 Firefox/119.0 <Résumé & «Déjà vu»>",
    "aws-sdk-go-v2/1.21.0 os/linux lang/go#1.21.1 md/GOARCH#amd64 api/sts#1.23.0 app/東京-ツール",
]
EVENTS = [
    ("s3.amazonaws.com", "GetObject", True, "Data"),
    ("s3.amazonaws.com", "PutObject", False, "Data"),
    ("sts.amazonaws.com", "AssumeRole", True, "Management"),
    ("ec2.amazonaws.com", "DescribeInstances", True, "Management"),
    ("iam.amazonaws.com", "PutRolePolicy", False, "Management"),
    ("kms.amazonaws.com", "Decrypt", True, "Management"),
]


def make_record(rng: random.Random, number: int, non_ascii_percent: float, padding: int = 0) -> dict:
    """One CloudTrail record (~1.3 KB compact); ``padding`` adds that many extra items (big records)."""
    non_ascii = rng.random() * 100 < non_ascii_percent
    source, name, read_only, category = EVENTS[number % len(EVENTS)]
    account = rng.choice(["123456789012", "210987654321"])
    session = f"session-{rng.getrandbits(32):08x}"
    key = f"logs/2021/07/28/part-{number:06d}.json.gz"
    if number % 9 == 0:
        key = f"reports/Q3 <final> & signed-{number}.pdf"
    if non_ascii and number % 2:
        key = f"rapports/été/Q3 <final> & signé-{number}.pdf"
    request: dict = {"bucketName": "example-bucket", "Host": "example-bucket.s3.us-east-1.amazonaws.com", "key": key}
    if name == "PutRolePolicy":
        # A policy document embedded as a JSON string, as IAM events carry it.
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        request = {"roleName": "ops", "policyName": "inline", "policyDocument": json.dumps(policy, indent=4)}
    elif name == "DescribeInstances":
        request = {"instancesSet": {"items": [{"instanceId": f"i-{rng.getrandbits(64):016x}"} for _ in range(3)]}}
    if padding:
        request["items"] = [{"id": index, "value": f"item-{index}-{'x' * 40}"} for index in range(padding)]
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLEID:{session}",
            "arn": f"arn:aws:sts::{account}:assumed-role/Admin/{session}",
            "accountId": account,
            "accessKeyId": f"ASIA{rng.getrandbits(64):016X}",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEID",
                    "arn": f"arn:aws:iam::{account}:role/Admin",
                    "accountId": account,
                    "userName": "Admin",
                },
                "attributes": {"creationDate": "2021-07-28T11:58:01Z", "mfaAuthenticated": "false"},
            },
        },
        "eventTime": f"2021-07-28T12:{number // 60 % 60:02d}:{number % 60:02d}Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": f"203.0.113.{number % 256}",
        "userAgent": rng.choice(NON_ASCII_USER_AGENTS if non_ascii and not number % 2 else USER_AGENTS),
        "requestParameters": request,
        "responseElements": None,
        "requestID": f"{rng.getrandbits(64):016X}",
        "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "readOnly": read_only,
        "resources": [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::example-bucket/{key}"}],
        "eventType": "AwsApiCall",
        "managementEvent": category == "Management",
        "recipientAccountId": account,
        "eventCategory": category,
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "s3.amazonaws.com",
        },
    }


def object_text(records: List[dict]) -> bytes:
    """A log file as CloudTrail writes it: compact JSON, non-ASCII unescaped."""
    return json.dumps({"Records": records}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def make_objects(count: int, non_ascii_percent: float) -> Tuple[List[bytes], int, int]:
    """``count`` gzipped objects; every 8th holds one 50-256 KB record. Returns (objects, records, raw bytes)."""
    rng = random.Random(20211128)
    objects = []
    raw_bytes = 0
    for object_number in range(count):
        records = [
            make_record(rng, object_number * RECORDS_PER_OBJECT + n, non_ascii_percent)
            for n in range(RECORDS_PER_OBJECT)
        ]
        if object_number % 8 == 0:
            big = make_record(rng, 0, non_ascii_percent, padding=rng.randrange(800, 4000))
            records[rng.randrange(RECORDS_PER_OBJECT)] = big
        raw = object_text(records)
        raw_bytes += len(raw)
        objects.append(gzip.compress(raw))
    return objects, count * RECORDS_PER_OBJECT, raw_bytes


def chunks_of(data: bytes) -> Iterator[bytes]:
    """What StreamingBody.iter_chunks(1 MiB) yields."""
    for offset in range(0, len(data), CHUNK_BYTES):
        yield data[offset : offset + CHUNK_BYTES]


def stage_gunzip(objects: List[bytes]) -> None:
    for data in objects:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for chunk in chunks_of(data):
            decompressor.decompress(chunk)


def stage_split(objects: List[bytes]) -> None:
    for data in objects:
        for _ in iter_records(chunks_of(data), MAX_DECOMPRESSED):
            pass


def stage_format(objects: List[bytes]) -> None:
    formatter = EventFormatter(STANZA, "main", "bench-host")
    for number, data in enumerate(objects):
        events = formatter.for_object(f"s3://example-bucket/AWSLogs/{number}.json.gz", "aws:cloudtrail")
        for text, record in iter_records(chunks_of(data), MAX_DECOMPRESSED):
            events.format(text, record)


def full_path(objects: List[bytes], output: io.TextIOBase) -> None:
    """What a worker does per object: stream records, format, write in batches through EventSink."""
    formatter = EventFormatter(STANZA, "main", "bench-host")
    sink = EventSink(EventWriter(output=output))
    for number, data in enumerate(objects):
        events = formatter.for_object(f"s3://example-bucket/AWSLogs/{number}.json.gz", "aws:cloudtrail")
        batch: List[str] = []
        for text, record in iter_records(chunks_of(data), MAX_DECOMPRESSED):
            if isinstance(record, dict):
                batch.append(events.format(text, record))
                if len(batch) >= BATCH_EVENTS:
                    sink.write(batch)
                    batch = []
        sink.write(batch)


def naive_path(objects: List[bytes], output: io.TextIOBase) -> None:
    """The obvious implementation: whole-object json.loads, json.dumps and smi.Event per record."""
    writer = EventWriter(output=output)
    for number, data in enumerate(objects):
        source = f"s3://example-bucket/AWSLogs/{number}.json.gz"
        for record in json.loads(gzip.decompress(data))["Records"]:
            event = Event(
                data=json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                stanza=STANZA,
                time=event_time(record.get("eventTime")),
                source=source,
                sourcetype="aws:cloudtrail",
                index="main",
                host="bench-host",
            )
            writer.write_event(event)


def best_cpu_time(function: Callable[[], None], repeats: int) -> float:
    """CPU seconds of the best run: the machine is shared, and CPU time is what one core spends."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def huge_object_chunks(target_bytes: int, non_ascii_percent: float) -> Iterator[bytes]:
    """A gzipped object of >= target_bytes decompressed, generated lazily as a multi-member gzip:
    one member of 1,000 records is compressed once and repeated, so only it is held in memory."""
    rng = random.Random(7)
    records = ",".join(
        json.dumps(make_record(rng, n, non_ascii_percent), separators=(",", ":"), ensure_ascii=False)
        for n in range(RECORDS_PER_OBJECT)
    ).encode("utf-8")
    member = gzip.compress(records + b",")
    repeats = target_bytes // (len(records) + 1) + 1
    yield gzip.compress(b'{"Records":[')
    for _ in range(repeats):
        yield member
    last = json.dumps(make_record(rng, 0, non_ascii_percent), separators=(",", ":"), ensure_ascii=False)
    yield gzip.compress(last.encode("utf-8") + b"]}")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_huge_object(target_gib: float, non_ascii_percent: float) -> None:
    """Peak RSS of the full path over one huge object; run first, before anything big is allocated."""
    target = int(target_gib * 1024**3)
    formatter = EventFormatter(STANZA, "main", "bench-host")
    rss_before = peak_rss_mib()
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        sink = EventSink(EventWriter(output=devnull))
        events = formatter.for_object("s3://example-bucket/huge.json.gz", "aws:cloudtrail")
        started = time.process_time()
        records = 0
        batch: List[str] = []
        for text, record in iter_records(huge_object_chunks(target, non_ascii_percent), 2 * target):
            batch.append(events.format(text, record))
            records += 1
            if len(batch) >= BATCH_EVENTS:
                sink.write(batch)
                batch = []
        sink.write(batch)
        elapsed = time.process_time() - started
    print(
        f"huge object: {target / 1024**3:.2f} GiB decompressed, {records:,} records in {elapsed:.1f} CPU s "
        f"({records / elapsed:,.0f} records/s); peak RSS {rss_before:.1f} MiB before, "
        f"{peak_rss_mib():.1f} MiB after (+{peak_rss_mib() - rss_before:.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=40, help="objects of 1,000 records per stage run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per stage; the best is reported")
    parser.add_argument("--rss-gib", type=float, default=1.0, help="decompressed size of the huge object (0: skip)")
    parser.add_argument("--non-ascii-percent", type=float, default=10, help="share of records with non-ASCII text")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the full path")
    arguments = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    print(f"Python {sys.version.split()[0]}, one core")
    if arguments.rss_gib > 0:
        measure_huge_object(arguments.rss_gib, arguments.non_ascii_percent)

    objects, records, raw_bytes = make_objects(arguments.objects, arguments.non_ascii_percent)
    compressed = sum(len(data) for data in objects)
    print(
        f"workload: {len(objects)} objects, {records:,} records, {raw_bytes / records:,.0f} bytes/record, "
        f"{arguments.non_ascii_percent:g}% with non-ASCII text, "
        f"{raw_bytes / 1e6:.1f} MB raw, {compressed / 1e6:.1f} MB gzipped"
    )
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        stages = [
            ("gunzip alone (zlib, 1 MiB chunks)", lambda: stage_gunzip(objects)),
            ("gunzip + split (iter_records)", lambda: stage_split(objects)),
            ("+ format events (ObjectEvents.format)", lambda: stage_format(objects)),
            ("full path (+ EventSink to /dev/null)", lambda: full_path(objects, devnull)),
            ("naive: json.loads + json.dumps + smi.Event", lambda: naive_path(objects, devnull)),
        ]
        print(f"{'stage (best of runs, CPU time)':<45} {'records/s':>12} {'MB/s raw':>10}")
        for label, function in stages:
            repeats = 1 if label.startswith("naive") else arguments.repeats
            elapsed = best_cpu_time(function, repeats)
            print(f"{label:<45} {records / elapsed:>12,.0f} {raw_bytes / elapsed / 1e6:>10.1f}")
        if arguments.profile:
            profiler = cProfile.Profile()
            profiler.runcall(full_path, objects, devnull)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
