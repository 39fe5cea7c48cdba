"""The built aws_cloudtrail_s3_backfill input, run as splunkd runs it, against moto and the splunkd emulator."""

import json
from collections import Counter
from datetime import date, datetime, timezone

from environment import backfill_params, input_params
from expectations import assert_exact_events, error_lines

from harness.aws import cloudtrail_key
from harness.cloudtrail_data import make_records, record_json
from harness.proxies import FaultInjectingProxy, Rule, s3_error
from harness.subscription_files import control_document, data_document, firehose_object
from harness.trail_layout import lay_out_trail

FIRST = date(2026, 10, 1)
ORG_ID = "o-a1b2c3d4e5"


def is_list(request):
    return request.method == "GET" and "list-type=2" in request.path


def real_trail(aws, **overrides):
    """Two accounts (one through an organization trail), three regions, 40 days, Insights and digest files."""
    layout = dict(
        first_day=FIRST,
        days=40,
        accounts=("111111111111",),
        organization_accounts=("222222222222",),
        organization_id=ORG_ID,
        regions=("us-east-1", "eu-west-1", "ap-southeast-2"),
        logs_per_day=2,
        records_per_log=5,
        insight_every=7,
        prefix="trails/main",
    )
    layout.update(overrides)
    return lay_out_trail(aws, **layout)


def finish(running, timeout=120):
    """A backfill exits by itself once its range is done."""
    assert running.wait(timeout) == 0, running.describe()
    assert not running.protocol_errors


def test_a_sub_range_yields_exactly_its_files_with_the_readme_number_of_list_calls(moto, aws, splunkd, start_backfill):
    trail = real_trail(aws)
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    try:
        params = backfill_params(
            moto, trail.bucket, "2026-10-11", "2026-10-20", key_prefix="trails/main", s3_endpoint_url=proxy.url
        )
        running = start_backfill("history", params)
        finish(running)
        list_calls = proxy.count(is_list)
    finally:
        proxy.stop()
    assert_exact_events(running.events, trail.expected(date(2026, 10, 11), date(2026, 10, 20)))
    # README: 1 (AWSLogs/) + 1 per organization folder + 1 per account + 1 per wanted account folder
    # (CloudTrail, CloudTrail-Insight) + partitions x days, partitions = accounts x folders x regions
    partitions = 2 * 2 * 3
    assert list_calls == 1 + 1 + 2 + 2 * 2 + partitions * 10
    log = running.log_text()
    assert "Backfill complete" in log and f"list_calls={list_calls}" in log
    assert not error_lines(log)
    assert "days_done=120 days_total=120" in log  # the final metrics line
    assert not any(e.sourcetype == "aws:cloudtrail:digest" for e in running.events)

    # a later start of the same input finds the range done: no listing, no event
    again = start_backfill(
        "history", backfill_params(moto, trail.bucket, "2026-10-11", "2026-10-20", key_prefix="trails/main")
    )
    finish(again)
    assert again.event_count == 0 and "already complete" in again.log_text()


def test_a_changed_range_starts_over_and_files_already_ingested_are_skipped(moto, aws, start_backfill):
    trail = real_trail(aws, days=12, organization_accounts=(), regions=("us-east-1",))
    finish(
        start_backfill(
            "moving", backfill_params(moto, trail.bucket, "2026-10-01", "2026-10-05", key_prefix="trails/main")
        )
    )
    second = start_backfill(
        "moving", backfill_params(moto, trail.bucket, "2026-10-04", "2026-10-08", key_prefix="trails/main")
    )
    finish(second)
    assert_exact_events(second.events, trail.expected(date(2026, 10, 6), date(2026, 10, 8)))
    overlap = len(trail.expected(date(2026, 10, 4), date(2026, 10, 5)))
    assert f"objects_skipped_done={overlap}" in second.log_text().split("final uptime_s")[-1]


def test_the_backfill_and_the_sqs_input_reading_the_same_files_at_once_index_each_record_once(
    moto, aws, splunkd, start_backfill, start_input
):
    trail = real_trail(
        aws,
        days=3,
        organization_accounts=(),
        regions=("us-east-1", "eu-west-1"),
        logs_per_day=4,
        records_per_log=400,
        insight_every=0,
    )
    queue = aws.create_queue()
    logs = [f for f in trail.files if f.kind == "log"]
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    # slow reads (~1.5 s per file) so that the two inputs meet on the same files
    proxy.add_rule(
        Rule(
            match=lambda r: r.method == "GET" and "list-type" not in r.path and "/AWSLogs/" in r.path,
            bytes_per_second=max(logs[0].info.size * 2 // 3, 1),
        )
    )
    try:
        # newest first: the SQS input walks the files from the end, the backfill from the start; they meet
        for f in reversed(logs):
            aws.send_s3_event(queue, [f.info])
        sqs = start_input("live", input_params(moto, queue, s3_endpoint_url=proxy.url, sqs_batch_size=1))
        backfill = start_backfill(
            "history",
            backfill_params(
                moto, trail.bucket, "2026-10-01", "2026-10-03", key_prefix="trails/main", s3_endpoint_url=proxy.url
            ),
        )
        finish(backfill, timeout=180)
        aws.wait_until_drained(queue, 120)
        assert sqs.terminate() == 0
    finally:
        proxy.stop()
    expected = trail.expected(FIRST, date(2026, 10, 3))
    assert_exact_events(sqs.events + backfill.events, expected, stanza=None)
    assert sqs.events and backfill.events, "both inputs must have read some of the files"
    log = backfill.log_text()
    assert not error_lines(log)
    assert log.count("Skipped s3://") >= 1  # files the other input had done (or was reading)


def test_sigkill_during_a_backfill_then_restart_loses_nothing_and_repeats_only_unsaved_records(
    moto, aws, splunkd, start_backfill
):
    trail = real_trail(
        aws,
        days=4,
        organization_accounts=(),
        regions=("us-east-1",),
        logs_per_day=3,
        records_per_log=3000,
        insight_every=0,
    )
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    size = max(f.info.size for f in trail.files)
    proxy.add_rule(
        Rule(
            match=lambda r: r.method == "GET" and "list-type" not in r.path and "/AWSLogs/" in r.path,
            bytes_per_second=max(size // 3, 1),
        )
    )
    params = backfill_params(
        moto,
        trail.bucket,
        "2026-10-01",
        "2026-10-04",
        key_prefix="trails/main",
        s3_endpoint_url=proxy.url,
        max_objects_in_flight=2,
    )
    expected = trail.expected(FIRST, date(2026, 10, 4))
    total = sum(len(r) for r in expected.values())
    runs, in_flight = [], []
    try:
        for kill_after in (4000, 6000):
            running = start_backfill("crashy", params)
            running.wait_for_events(kill_after, timeout=120)
            running.kill()
            written = Counter(e.source for e in running.events)
            splunkd.settle()  # a progress save sent just before the kill still lands
            progress = splunkd.kv_documents("ta_aws_cloudtrail_progress")
            saved = {f"s3://{d['bucket']}/{d['object_key']}": int(d["records_done"]) for d in progress if "bucket" in d}
            # written by this process beyond what its file's saved progress covers: a restart writes them again
            in_flight.append(sum(max(0, count - saved.get(source, 0)) for source, count in written.items()))
            runs.append(running.events)
        proxy.clear_rules()
        last = start_backfill("crashy", params)
        finish(last, timeout=180)
    finally:
        proxy.stop()
    events = [e for run in runs for e in run] + last.events
    ids = Counter(json.loads(e.data)["eventID"] for e in events)
    assert set(ids) == {r["eventID"] for records in expected.values() for r in records}, "a record is missing"
    duplicates = sum(n - 1 for n in ids.values())
    assert len(events) - duplicates == total
    assert all(count > 0 for count in in_flight), "each kill must land while records are unsaved"
    # exactly the records written after their file's last saved progress come again
    assert duplicates == sum(in_flight), (duplicates, in_flight)
    print(f"\nbackfill, 2 SIGKILLs: {total} records, lost 0, duplicates {duplicates} (unsaved at kills: {in_flight})")
    assert "Backfill complete" in last.log_text()


def test_bad_files_are_skipped_with_one_line_each_and_the_good_ones_kept(moto, aws, splunkd, start_backfill):
    trail = real_trail(aws, days=2, organization_accounts=(), regions=("us-east-1",), insight_every=0)
    day = datetime(2026, 10, 1, 3, 0, tzinfo=timezone.utc)
    prefix = "trails/main"
    corrupt = aws.put_cloudtrail_object(
        trail.bucket, cloudtrail_key(when=day, prefix=prefix), b"\x1f\x8b\x08garbage", gzip=False
    )
    notes_key = cloudtrail_key(when=day, prefix=prefix).rsplit("/", 1)[0] + "/README.txt"
    aws.s3.put_object(Bucket=trail.bucket, Key=notes_key, Body=b"not a log file")
    vanishing = aws.put_cloudtrail_object(
        trail.bucket, cloudtrail_key(when=day, prefix=prefix), make_records(4, seed=9)
    )
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    # deleted between the listing and the read
    proxy.add_rule(
        Rule(
            match=lambda r: (
                r.method == "GET" and vanishing.key.rsplit("/", 1)[1] in r.path and "list-type" not in r.path
            ),
            status=404,
            body=s3_error("NoSuchKey"),
        )
    )
    try:
        running = start_backfill(
            "bad",
            backfill_params(
                moto, trail.bucket, "2026-10-01", "2026-10-02", key_prefix=prefix, s3_endpoint_url=proxy.url
            ),
        )
        finish(running)
    finally:
        proxy.stop()
    assert_exact_events(running.events, trail.expected(FIRST, date(2026, 10, 2)))
    log = running.log_text()
    [damaged] = error_lines(log)
    assert corrupt.source in damaged and "marked done" in damaged
    assert f"{vanishing.source} failed: the object does not exist" in log and "; skipped" in log
    assert f"Skipped s3://{trail.bucket}/{notes_key}: not a CloudTrail log file" in log
    final = log.split("final uptime_s")[-1]
    assert "objects_missing=1" in final and "objects_skipped_other=1" in final
    assert "Backfill complete" in log


def test_saving_a_backfill_checks_dates_and_the_bucket(moto, aws, splunkd, backfill_runner):
    bucket = aws.create_bucket()
    result = backfill_runner.validate("v", backfill_params(moto, bucket, "2026-10-05", "2026-10-01"), splunkd)
    assert result.returncode != 0 and "before the start date" in result.message
    result = backfill_runner.validate("v", backfill_params(moto, bucket, "2026-13-01"), splunkd)
    assert result.returncode != 0 and "YYYY-MM-DD" in result.message
    result = backfill_runner.validate("v", backfill_params(moto, "no-such-bucket-here", "2026-10-01"), splunkd)
    assert result.returncode != 0 and "NoSuchBucket" in result.message
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    proxy.add_rule(Rule(match=is_list, status=403, body=s3_error("AccessDenied", "Access Denied")))
    try:
        params = backfill_params(moto, bucket, "2026-10-01", key_prefix="ct", s3_endpoint_url=proxy.url)
        result = backfill_runner.validate("v", params, splunkd)
    finally:
        proxy.stop()
    assert result.returncode != 0 and "s3:ListBucket" in result.message and f"arn:aws:s3:::{bucket}" in result.message
    assert "ct/AWSLogs/" in result.message
    assert backfill_runner.validate("v", backfill_params(moto, bucket, "2026-10-01"), splunkd).returncode == 0


def test_a_listing_denied_mid_walk_stops_it_with_one_line_and_a_restart_resumes_after_the_days_done(
    moto, aws, start_backfill
):
    trail = real_trail(aws, days=3, organization_accounts=(), regions=("us-east-1",), insight_every=0)
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    denied = Rule(match=lambda r: is_list(r) and "2026%2F10%2F02" in r.path, status=403, body=s3_error("AccessDenied"))
    proxy.add_rule(denied)
    params = backfill_params(
        moto, trail.bucket, "2026-10-01", "2026-10-03", key_prefix="trails/main", s3_endpoint_url=proxy.url
    )
    try:
        first = start_backfill("denied", params)
        finish(first)
        assert denied.hits == 1, "a denial is not retried"
        proxy.clear_rules()
        second = start_backfill("denied", params)
        finish(second)
    finally:
        proxy.stop()
    assert_exact_events(first.events, trail.expected(FIRST, FIRST))
    [line] = error_lines(first.log_text())
    assert "cannot go on" in line and "s3:ListBucket" in line and "2026/10/02" in line
    assert_exact_events(second.events, trail.expected(date(2026, 10, 2), date(2026, 10, 3)))
    assert "Backfill complete" in second.log_text()


def test_firehose_files_of_a_cloudwatch_logs_subscription_are_backfilled_by_day(moto, aws, splunkd, start_backfill):
    """Files Firehose wrote under cwl/YYYY/MM/DD/HH/ (no AWSLogs/ at all): the range's days, each record once."""
    bucket = aws.create_bucket()
    expected = {}
    for day in (1, 2, 3, 4):
        for hour in (0, 13):
            records = make_records(30, seed=day * 100 + hour, first_index=(day * 100 + hour) * 1000)
            messages = [record_json(r) for r in records]
            documents = [
                data_document(messages[:10], "/ct", "s1"),
                control_document(),
                data_document(messages[10:], "/ct", "s2"),
            ]
            name = f"ct-to-s3-1-2026-10-{day:02d}-{hour:02d}-00-00-{day:04d}{hour:04d}-abcd"
            key = f"cwl/2026/10/{day:02d}/{hour:02d}/{name}"
            aws.put_cloudtrail_object(bucket, key, firehose_object(documents, gzip_twice=[2]), gzip=False)
            if day in (2, 3):
                expected[f"s3://{bucket}/{key}"] = records
    aws.put_cloudtrail_object(bucket, "cwl/2026/10/02/05/readme.txt", b"not a firehose file", gzip=False)
    running = start_backfill("firehose", backfill_params(moto, bucket, "2026-10-02", "2026-10-03", key_prefix="cwl"))
    finish(running)
    assert_exact_events(running.events, expected)
    log = running.log_text()
    assert not error_lines(log) and "Backfill complete" in log
    assert "readme.txt: not a CloudTrail log file" in log
