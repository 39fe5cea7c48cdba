"""The built aws_cloudtrail_cloudwatch_logs input against moto's CloudWatch Logs over HTTP, with the splunkd
emulator's KV store for its positions, run as splunkd runs it; and CloudWatch Logs subscription files (as Firehose
writes them) through the SQS input."""

import json
import random
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Dict, List, Sequence

import pytest
from environment import ARTIFACTS, input_params
from expectations import event_ids

from harness.aws import ACCOUNT_ID, QueueCounts
from harness.cloudtrail_data import make_records, record_json
from harness.modinput import ModularInputRunner
from harness.proxies import FaultInjectingProxy, Rule, target_is
from harness.subscription_files import control_document, data_document, firehose_object

SCHEME = "aws_cloudtrail_cloudwatch_logs"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2")
PUT_BATCH = 2_000


@pytest.fixture
def logs_runner(built_addon, tmp_path) -> ModularInputRunner:
    runner = ModularInputRunner(built_addon, str(tmp_path / "splunk-home"), scheme=SCHEME)
    ARTIFACTS.log_dirs.append(runner.log_dir)
    return runner


@pytest.fixture
def logs(moto):
    return moto.client("logs")


def params(moto, log_groups: str, **overrides) -> dict:
    values = {
        "account": "acct",
        "region": moto.region,
        "log_groups": log_groups,
        "start_position": "beginning",
        "delay_minutes": "1",
        "interval": "10",
        "index": "main",
        "logs_endpoint_url": moto.endpoint_url,
        "sts_endpoint_url": moto.endpoint_url,
    }
    values.update(overrides)
    return values


def new_group(logs, streams: Sequence[str]) -> str:
    name = f"/cloudtrail/test-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=name)
    for stream in streams:
        logs.create_log_stream(logGroupName=name, logStreamName=stream)
    return name


def trail_streams(count: int = len(REGIONS)) -> List[str]:
    return [f"{ACCOUNT_ID}_CloudTrail_{region}" for region in REGIONS[:count]]


def stamp(record: dict, millis: int) -> dict:
    record["eventTime"] = datetime.fromtimestamp(millis / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return record


def put(logs, group: str, stream: str, items: Sequence[tuple]) -> None:
    """Put ``(millis, message)`` items in chronological order, as CloudWatch Logs requires per call."""
    ordered = sorted(items, key=lambda item: item[0])
    for offset in range(0, len(ordered), PUT_BATCH):
        batch = ordered[offset : offset + PUT_BATCH]
        answer = logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": millis, "message": message} for millis, message in batch],
        )
        assert not answer.get("rejectedLogEventsInfo"), answer["rejectedLogEventsInfo"]


def put_records(logs, group: str, stream: str, records: Sequence[dict]) -> None:
    put(logs, group, stream, [(record["_millis"], record_json(_public(record))) for record in records])


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "_millis"}


def records_at(count: int, seed: int, first_index: int, start_millis: int, span_millis: int, rng) -> List[dict]:
    records = make_records(count, seed=seed, first_index=first_index)
    for record in records:
        record["_millis"] = start_millis + rng.randrange(span_millis)
        stamp(record, record["_millis"])
    return records


def now_millis() -> int:
    return int(time.time() * 1000)


def test_twenty_thousand_records_in_four_streams_with_late_ones_arrive_exactly_once(moto, logs, splunkd, logs_runner):
    rng = random.Random(11)
    streams = trail_streams()
    group = new_group(logs, streams)
    start = now_millis() - 2 * 3600 * 1000
    expected: Counter = Counter()
    for n, stream in enumerate(streams):
        records = records_at(4_500, 200 + n, n * 10_000, start, 2 * 3600 * 1000 - 120_000, rng)
        put_records(logs, group, stream, records)
        expected.update(r["eventID"] for r in records)

    with logs_runner.start("trail_logs", params(moto, group), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_for_events(18_000, timeout=120)
        # While it runs: 1,000 fresh records in one stream, then 1,000 late ones in the others, whose timestamps
        # are 40 s older than the fresh ones already in the group (within the 1-minute allowance).
        fresh_at = now_millis()
        fresh = records_at(1_000, 300, 50_000, fresh_at - 1_000, 1_000, rng)
        put_records(logs, group, streams[0], fresh)
        late = records_at(1_000, 301, 60_000, fresh_at - 41_000, 1_000, rng)
        for index, stream in enumerate(streams[1:]):
            put_records(logs, group, stream, late[index::3])
        expected.update(r["eventID"] for r in fresh + late)
        added = time.monotonic()
        running.wait_for_events(20_000, timeout=60 + 10 + 60)
        caught_up = time.monotonic() - added
        time.sleep(12)  # one more pass: nothing new, nothing again
        assert running.terminate() == 0
    got = event_ids(running.events)
    print(
        f"\ncloudwatch logs: {len(running.events)} events; records added while running arrived after {caught_up:.0f} s"
    )
    assert got == expected, (len(got), sum(got.values()), [k for k, v in got.items() if v > 1][:5])
    assert caught_up <= 60 + 10 + 15  # delay + interval, and the pass's own time
    assert {e.source for e in running.events} == {f"aws:cloudwatchlogs:{group}:{s}" for s in streams}
    one = running.events[0]
    record = json.loads(one.data)
    assert one.sourcetype == "aws:cloudtrail" and one.index == "main"
    event_epoch = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(float(one.time) - event_epoch.timestamp()) < 1
    log_text = logs_runner.input_log("trail_logs")
    assert "CloudWatch Logs pass done" in log_text and "log_level=ERROR" not in log_text
    [position] = [
        d for d in splunkd.kv_documents("ta_aws_cloudtrail_cursors") if d["input"] == f"{SCHEME}://trail_logs"
    ]
    assert position["name"] == group


def test_restarts_repeat_nothing_and_a_quiet_group_costs_one_call_a_pass(moto, logs, splunkd, logs_runner):
    rng = random.Random(12)
    group = new_group(logs, trail_streams(2))
    quiet = new_group(logs, trail_streams(4))
    records = records_at(3_000, 400, 0, now_millis() - 3600 * 1000, 3_000_000, rng)
    put_records(logs, group, trail_streams(1)[0], records)
    seen: Counter = Counter()
    for run in range(2):
        with logs_runner.start("restarted", params(moto, f"{group},{quiet}"), splunkd) as running:
            ARTIFACTS.runs.append(running)
            if run == 0:
                running.wait_for_events(3_000, timeout=60)
            running.wait_until(
                lambda run=run: logs_runner.input_log("restarted").count("CloudWatch Logs pass done") >= 2 + 2 * run,
                timeout=60,
            )
            assert running.terminate() == 0
        seen.update(event_ids(running.events))
    assert seen == Counter(r["eventID"] for r in records)
    passes = [line for line in logs_runner.input_log("restarted").splitlines() if "CloudWatch Logs pass done" in line]
    # after the first pass, each pass of two quiet groups: one FilterLogEvents call each
    assert all("filter_calls=2 " in line for line in passes[1:]), passes


@pytest.mark.slow
def test_killed_at_random_points_and_restarted_loses_nothing(moto, logs, splunkd, logs_runner):
    """SIGKILL while batches are being written (and once while starting), six times, then a run to the end: every
    record, and repeats only of a batch flushed to stdout whose position had not reached the KV store."""
    rng = random.Random(13)
    streams = trail_streams(3)
    group = new_group(logs, streams)
    expected: Counter = Counter()
    start = now_millis() - 3 * 3600 * 1000
    for n, stream in enumerate(streams):
        records = records_at(6_000, 500 + n, n * 10_000, start, 3 * 3600 * 1000 - 120_000, rng)
        put_records(logs, group, stream, records)
        expected.update(r["eventID"] for r in records)
    seen: Counter = Counter()
    kills = 0
    for round_number in range(6):
        running = logs_runner.start("killed", params(moto, group), splunkd)
        ARTIFACTS.runs.append(running)
        if round_number == 2:
            time.sleep(rng.uniform(0.3, 1.5))  # while it starts (settings, KV store, first call)
        else:
            target = rng.randint(100, 2_500)
            running.wait_until(
                lambda running=running, target=target: running.event_count >= target or running.returncode is not None,
                timeout=60,
            )
        assert running.kill() == -9
        kills += 1
        seen.update(event_ids(running.events))
    final = logs_runner.start("killed", params(moto, group), splunkd)
    ARTIFACTS.runs.append(final)
    final.wait_until(lambda: len(seen | event_ids(final.events)) >= len(expected), timeout=120)
    final.wait_until(lambda: "CloudWatch Logs pass done" in logs_runner.input_log("killed"), timeout=30)
    assert final.terminate() == 0
    seen.update(event_ids(final.events))
    repeats = sum(count - 1 for count in seen.values())
    print(
        f"\ncloudwatch logs kills: {kills} kills, {sum(seen.values())} events, {len(seen)} distinct, {repeats} repeated"
    )
    assert set(seen) == set(expected), f"lost {len(set(expected) - set(seen))}"
    assert repeats <= kills * 500  # at most the one batch in flight at each kill


def test_stream_filter_non_json_messages_and_a_missing_group(moto, logs, splunkd, logs_runner):
    rng = random.Random(14)
    streams = [*trail_streams(2), "application-logs"]
    group = new_group(logs, streams)
    base = now_millis() - 600_000
    records = records_at(300, 600, 0, base, 300_000, rng)
    put_records(logs, group, streams[0], records[:150])
    put_records(logs, group, streams[1], records[150:])
    put(logs, group, streams[1], [(base + 400_000, "not json at all"), (base + 400_001, "[1,2,3]")])
    other = records_at(50, 601, 5_000, base, 300_000, rng)
    put_records(logs, group, "application-logs", other)
    # a record without eventTime: its time is the log event's timestamp
    put(logs, group, streams[0], [(base + 450_000, json.dumps({"eventID": "no-time", "eventName": "X"}))])
    missing = "/cloudtrail/does-not-exist"
    overrides = {"stream_filter": f"^{ACCOUNT_ID}_CloudTrail_"}
    with logs_runner.start("filtered", params(moto, f"{missing},{group}", **overrides), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_for_events(301, timeout=60)
        running.wait_until(
            lambda: logs_runner.input_log("filtered").count("CloudWatch Logs pass done") >= 2, timeout=60
        )
        assert running.terminate() == 0
    got = event_ids(running.events)
    assert got == Counter([r["eventID"] for r in records] + ["no-time"])
    [untimed] = [e for e in running.events if json.loads(e.data)["eventID"] == "no-time"]
    assert untimed.time == f"{(base + 450_000) // 1000}.{(base + 450_000) % 1000:03d}"
    log_text = logs_runner.input_log("filtered")
    errors = [line for line in log_text.splitlines() if "log_level=ERROR" in line]
    assert len(errors) == 1, errors  # once, though every pass meets it
    assert missing in errors[0] and "does not exist" in errors[0] and "ResourceNotFound" in errors[0]
    [warning] = [line for line in log_text.splitlines() if "not JSON objects" in line]
    assert "2 log events" in warning and "event ids:" in warning


def test_a_kv_store_outage_delays_the_start_and_then_reads_everything_once(moto, logs, splunkd, logs_runner):
    rng = random.Random(15)
    group = new_group(logs, trail_streams(1))
    records = records_at(500, 700, 0, now_millis() - 900_000, 600_000, rng)
    put_records(logs, group, trail_streams(1)[0], records)
    splunkd.set_kv_outage(503)
    with logs_runner.start("kv_outage", params(moto, group), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_until(
            lambda: "it is read once its position can be loaded" in logs_runner.input_log("kv_outage"), timeout=30
        )
        assert running.event_count == 0
        splunkd.set_kv_outage(None)
        running.wait_for_events(500, timeout=40)
        running.wait_until(lambda: "Recovered from kvstore_load" in logs_runner.input_log("kv_outage"), timeout=10)
        assert running.terminate() == 0
    assert event_ids(running.events) == Counter(r["eventID"] for r in records)


def test_validation_on_save(moto, logs, splunkd, logs_runner):
    group = new_group(logs, trail_streams(1))
    good = logs_runner.validate(
        "v", params(moto, f"{group},arn:aws:logs:{moto.region}:{ACCOUNT_ID}:log-group:{group}:*"), splunkd
    )
    assert good.returncode == 0 and good.message is None, good
    missing = logs_runner.validate("v", params(moto, f"{group},/no/such/group"), splunkd)
    assert missing.returncode != 0 and "/no/such/group" in missing.message and "does not exist" in missing.message
    bad = logs_runner.validate(
        "v",
        params(
            moto, f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:{group}", stream_filter="([", start_position="soon"
        ),
        splunkd,
    )
    assert bad.returncode != 0
    for phrase in ("is in region eu-west-1", "not a valid regular expression", "Start position"):
        assert phrase in bad.message, bad.message
    other_account = f"arn:aws:logs:{moto.region}:111122223333:log-group:{group}"
    foreign = logs_runner.validate("v", params(moto, other_account), splunkd)
    assert foreign.returncode != 0 and "account 111122223333" in foreign.message, foreign


def test_a_firehose_subscription_file_through_the_sqs_input_yields_exactly_its_log_events(
    moto, aws, splunkd, start_input
):
    bucket = aws.create_bucket()
    queue = aws.create_queue()
    records = make_records(60, seed=800)
    messages = [record_json(r) for r in records]
    documents = [
        data_document(messages[:20], "/cloudtrail", f"{ACCOUNT_ID}_CloudTrail_us-east-1", 0),
        control_document(),
        data_document(messages[20:35], "/cloudtrail", f"{ACCOUNT_ID}_CloudTrail_eu-west-1", 100),
        data_document(messages[35:], "/cloudtrail", f"{ACCOUNT_ID}_CloudTrail_us-east-1", 200),
    ]
    key = "cwl/2026/12/02/16/cloudtrail-to-s3-1-2026-12-02-16-05-33-0b1f7c9e-2d8a-4a8e-9e63-5b2f7f5d1a10"
    obj = aws.put_cloudtrail_object(bucket, key, firehose_object(documents, gzip_twice=[2]), gzip=False)
    aws.send_s3_event(queue, [obj])
    running = start_input("firehose", input_params(moto, queue))
    running.wait_for_events(60, timeout=60)
    running.wait_until(lambda: aws.queue_counts(queue) == QueueCounts(0, 0, 0), timeout=30)
    time.sleep(1)
    assert running.terminate() == 0
    assert event_ids(running.events) == Counter(r["eventID"] for r in records)
    assert {e.source for e in running.events} == {f"s3://{bucket}/{key}"}
    progress: Dict[str, object] = next(
        d for d in splunkd.kv_documents("ta_aws_cloudtrail_progress") if d.get("object_key") == key
    )
    assert progress["done"] is True and progress["records_done"] == 60


def logs_error(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


def test_throttling_an_expired_token_and_access_denied_cost_time_not_events(moto, logs, splunkd, logs_runner):
    """Through a proxy in front of moto: FilterLogEvents answers ThrottlingException three times, refuses one
    nextToken, then (for another input) AccessDenied. Calls keep to 5 per second."""
    rng = random.Random(16)
    group = new_group(logs, trail_streams(2))
    records = records_at(12_000, 900, 0, now_millis() - 3600 * 1000, 3_000_000, rng)  # two pages in moto
    put_records(logs, group, trail_streams(1)[0], records[:6_000])
    put_records(logs, group, trail_streams(2)[1], records[6_000:])
    with FaultInjectingProxy(moto.endpoint_url) as proxy:
        json_errors = "application/x-amz-json-1.1"
        proxy.add_rule(
            Rule(
                target_is("FilterLogEvents"),
                status=400,
                body=logs_error("ThrottlingException", "Rate exceeded"),
                content_type=json_errors,
                remaining=3,
            )
        )
        proxy.add_rule(
            Rule(
                lambda r: target_is("FilterLogEvents")(r) and b"nextToken" in r.body,
                status=400,
                body=logs_error("InvalidParameterException", "The specified nextToken is invalid or expired."),
                content_type=json_errors,
                remaining=1,
            )
        )
        overrides = {"logs_endpoint_url": proxy.url}
        with logs_runner.start("paced", params(moto, group, **overrides), splunkd) as running:
            ARTIFACTS.runs.append(running)
            running.wait_for_events(12_000, timeout=90)
            running.wait_until(lambda: "CloudWatch Logs pass done" in logs_runner.input_log("paced"), timeout=30)
            assert running.terminate() == 0
        log_text = logs_runner.input_log("paced")
        filter_calls = [r for r in proxy.requests if target_is("FilterLogEvents")(r)]
        call_times = [r.at for r in filter_calls]
        # every page of a read repeats the parameters its nextToken came with (AWS binds the token to them)
        first_page_start = None
        for body in (json.loads(r.body) for r in filter_calls):
            if "nextToken" in body:
                assert body["startTime"] == first_page_start, body
            else:
                first_page_start = body["startTime"]
        assert any("nextToken" in json.loads(r.body) for r in filter_calls)
        proxy.clear_rules()
        proxy.add_rule(
            Rule(
                target_is("FilterLogEvents"),
                status=400,
                body=logs_error(
                    "AccessDeniedException",
                    f"User: arn:aws:iam::{ACCOUNT_ID}:user/splunk is not authorized to perform: logs:FilterLogEvents",
                ),
                content_type=json_errors,
            )
        )
        with logs_runner.start("denied", params(moto, group, **overrides), splunkd) as denied:
            ARTIFACTS.runs.append(denied)
            denied.wait_until(
                lambda: logs_runner.input_log("denied").count("CloudWatch Logs pass done") >= 2, timeout=40
            )
            assert denied.terminate() == 0
    assert event_ids(running.events) == Counter(r["eventID"] for r in records)
    warnings = [line for line in log_text.splitlines() if "log_level=WARNING" in line and "throttled" in line]
    assert len(warnings) == 1 and "5 requests/s" in warnings[0], warnings
    assert "FilterLogEvents answers again after" in log_text
    assert "the nextToken was refused" in log_text
    assert "throttled=3" in log_text  # the metrics line
    busiest = max(sum(1 for t in call_times if start <= t < start + 1.0) for start in call_times)
    assert busiest <= 5, busiest
    errors = [line for line in logs_runner.input_log("denied").splitlines() if "log_level=ERROR" in line]
    assert len(errors) == 1, errors
    assert "logs:FilterLogEvents" in errors[0] and "user/splunk" in errors[0] and denied.event_count == 0
