"""The built aws_cloudtrail_lookup input (CloudTrail Event history) against the LookupEvents emulator over HTTP,
with the splunkd emulator's KV store for its cursors, run as splunkd runs it."""

import json
import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from environment import ARTIFACTS, seed
from expectations import event_ids

from harness.cloudtrail_data import make_records
from harness.cloudtrail_lookup import CloudTrailLookupEmulator, lookup_events_from_records
from harness.modinput import ModularInputRunner
from harness.splunkd import SplunkdEmulator

SCHEME = "aws_cloudtrail_lookup"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


@pytest.fixture
def lookup():
    with CloudTrailLookupEmulator() as emulator:
        yield emulator


@pytest.fixture
def lookup_runner(built_addon, tmp_path) -> ModularInputRunner:
    runner = ModularInputRunner(built_addon, str(tmp_path / "splunk-home"), scheme=SCHEME)
    ARTIFACTS.log_dirs.append(runner.log_dir)
    return runner


@pytest.fixture
def splunkd():
    with SplunkdEmulator(seed()) as emulator:
        ARTIFACTS.secrets.append(emulator.session_key)
        yield emulator


def params(lookup, **overrides) -> dict:
    values = {
        "account": "acct",
        "regions": ",".join(REGIONS),
        "start_days": "3",
        "delay_minutes": "15",
        "interval": "20",
        "index": "main",
        "cloudtrail_endpoint_url": lookup.endpoint_url,
    }
    values.update(overrides)
    return values


def spread(records, start: datetime, seconds: float, rng: random.Random):
    """Give ``records`` eventTimes spread over ``seconds`` from ``start`` (whole seconds, as CloudTrail writes)."""
    for record in records:
        moment = start + timedelta(seconds=rng.uniform(0, seconds))
        record["eventTime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return records


def test_three_regions_and_three_days_arrive_exactly_once_with_late_and_same_second_events(
    lookup, splunkd, lookup_runner
):
    rng = random.Random(42)
    now = datetime.now(timezone.utc)
    expected = Counter()
    late = []
    for n, region in enumerate(REGIONS):
        records = make_records(6_600, seed=100 + n, first_index=n * 10_000)
        spread(records[:6_000], now - timedelta(days=3) + timedelta(minutes=1), 3 * 86400 - 30 * 60, rng)
        # 150 events in one second: three pages share it, the boundary falls between equal eventTimes
        for record in records[6_000:6_150]:
            record["eventTime"] = (now - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lookup.add_events(region, lookup_events_from_records(records[:6_150]))
        # 450 late events, visible 5-14 minutes after their eventTime: from 90 s after the start, when the first
        # pass has moved the cursor past their eventTimes
        for record in records[6_150:]:
            lag = rng.randint(5 * 60, 14 * 60)
            record["eventTime"] = (now + timedelta(seconds=90 - lag)).strftime("%Y-%m-%dT%H:%M:%SZ")
            late.extend(lookup_events_from_records([record], visible_after=lag))
            lookup.add_event(region, late[-1])
        expected.update(r["eventID"] for r in records)
    assert sum(expected.values()) == 19_800

    with lookup_runner.start("history", params(lookup), splunkd) as running:
        ARTIFACTS.runs.append(running)
        started = time.monotonic()
        running.wait_for_events(19_800 - len(late), timeout=240)
        first_pass = time.monotonic() - started
        # events made while it runs: visible 5 s after their eventTime
        fresh = make_records(200, seed=7, first_index=90_000)
        for record in fresh:
            record["eventTime"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        lookup.add_events(REGIONS[0], lookup_events_from_records(fresh, visible_after=5))
        expected.update(r["eventID"] for r in fresh)
        added = time.monotonic()
        running.wait_for_events(20_000, timeout=20 + 90 + 60)
        caught_up = time.monotonic() - added
        time.sleep(25)  # one more pass: nothing new, nothing again
        assert running.terminate() == 0
    got = event_ids(running.events)
    print(
        f"\nlookup: {len(running.events)} events, first pass {first_pass:.0f} s, late and fresh events in "
        f"{caught_up:.0f} s, {lookup.request_count()} requests, {lookup.throttled} throttled, "
        f"max {lookup.max_requests_per_second()} requests/s in a region"
    )
    assert got == expected, (len(got), sum(got.values()), [k for k, v in got.items() if v > 1][:5])
    assert lookup.max_requests_per_second() <= 2
    assert lookup.throttled == 0
    sources = {e.source for e in running.events}
    assert sources == {f"aws:cloudtrail:lookup:123456789012:{r}" for r in REGIONS}
    one = running.events[0]
    record = json.loads(one.data)
    assert one.sourcetype == "aws:cloudtrail" and one.index == "main"
    assert (
        abs(
            float(one.time)
            - datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        )
        < 1
    )
    docs = splunkd.kv_documents("ta_aws_cloudtrail_lookup")
    assert {d["stream"] for d in docs if d["kind"] == "cursor"} == {f"acct:{r}:management" for r in REGIONS}


def _load_small(lookup, n_per_region: int, seed_base: int, days: float = 1.0):
    rng = random.Random(seed_base)
    now = datetime.now(timezone.utc)
    expected = Counter()
    records_by_region = {}
    for n, region in enumerate(REGIONS):
        records = make_records(n_per_region, seed=seed_base + n, first_index=n * 100_000)
        spread(records, now - timedelta(days=days) + timedelta(minutes=1), days * 86400 - 120, rng)
        lookup.add_events(region, lookup_events_from_records(records))
        expected.update(r["eventID"] for r in records)
        records_by_region[region] = records
    return expected, records_by_region


def test_killed_at_random_points_and_restarted_loses_nothing(lookup, splunkd, lookup_runner):
    """SIGKILL while pages are being written, four times, then a run to the end: every event, and repeats only of
    the page each stream was writing at a kill (written to stdout, its IDs not yet in the KV store)."""
    expected, _ = _load_small(lookup, 1_500, 300)
    rng = random.Random(5)
    seen = Counter()
    kills = 0
    for _ in range(4):
        running = lookup_runner.start("killed", params(lookup, start_days="1"), splunkd)
        ARTIFACTS.runs.append(running)
        target = len(seen) + rng.randint(100, 900)
        running.wait_until(
            lambda running=running, target=target: (
                running.event_count >= target - len(seen) or running.returncode is not None
            ),
            timeout=120,
        )
        running.kill()
        kills += 1
        seen.update(event_ids(running.events))
        if len(seen) == len(expected):
            break
    final = lookup_runner.start("killed", params(lookup, start_days="1"), splunkd)
    ARTIFACTS.runs.append(final)
    final.wait_until(lambda: len(seen | event_ids(final.events)) >= len(expected), timeout=180)
    time.sleep(2)
    assert final.terminate() == 0
    seen.update(event_ids(final.events))
    repeats = sum(count - 1 for count in seen.values())
    print(f"\nlookup kills: {kills} kills, {sum(seen.values())} events, {len(seen)} distinct, {repeats} repeated")
    assert set(seen) == set(expected), f"lost {len(set(expected) - set(seen))}"
    # at most one page (50 events) per stream per kill comes again
    assert repeats <= kills * len(REGIONS) * 50


def test_selectors_and_the_read_only_exclusion_select_exactly_the_matching_events(lookup, splunkd, lookup_runner):
    _, records_by_region = _load_small(lookup, 800, 500)
    records = [r for region in REGIONS for r in records_by_region[region]]

    def run(name: str, **overrides) -> Counter:
        with lookup_runner.start(name, params(lookup, start_days="2", **overrides), splunkd) as running:
            ARTIFACTS.runs.append(running)
            running.wait_until(lambda: "Event history pass done" in lookup_runner.input_log(name), timeout=120)
            assert running.terminate() == 0
        return event_ids(running.events)

    got = run("s3_list", event_selector="s3:List*")
    assert got == Counter(
        r["eventID"] for r in records if r["eventSource"] == "s3.amazonaws.com" and r["eventName"].startswith("List")
    )
    got = run("s3_and_iam", event_selector="s3:List*, iam:*")
    assert got == Counter(
        r["eventID"]
        for r in records
        if (r["eventSource"] == "s3.amazonaws.com" and r["eventName"].startswith("List"))
        or r["eventSource"] == "iam.amazonaws.com"
    )
    got = run("writes", exclude_read_only="1")
    assert got == Counter(r["eventID"] for r in records if r["readOnly"] is not True)
    assert got


def test_throttling_and_an_expired_next_token_cost_time_not_events(lookup, splunkd, lookup_runner):
    expected, _ = _load_small(lookup, 1_200, 700)
    for region in REGIONS:
        lookup.fail_next(region, "ThrottlingException", "Rate exceeded", count=3)
    with lookup_runner.start("throttled", params(lookup, start_days="2"), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_for_events(600, timeout=60)
        lookup.expire_tokens()  # every NextToken in use is refused from now on
        running.wait_for_events(len(expected), timeout=120)
        time.sleep(2)
        assert running.terminate() == 0
        log = lookup_runner.input_log("throttled")
    assert event_ids(running.events) == expected
    assert log.count("LookupEvents is throttled") == len(REGIONS)  # one WARNING per episode and region
    assert "answers again after" in log
    assert "the NextToken was refused" in log
    assert lookup.max_requests_per_second() <= 2


def test_access_denied_a_disabled_region_and_a_damaged_event_are_each_one_clear_line(lookup, splunkd, lookup_runner):
    expected, _ = _load_small(lookup, 100, 900)
    lookup.fail_next("eu-west-1", "AccessDeniedException", "User: arn:aws:iam::123456789012:user/x is not authorized")
    recent = spread(
        make_records(1, seed=99, first_index=500_000),
        datetime.now(timezone.utc) - timedelta(hours=2),
        60,
        random.Random(1),
    )
    damaged = lookup_events_from_records(recent)[0]
    damaged.cloudtrail_event = '{"eventVersion": "1.08", "eventID": '
    lookup.add_event("us-east-1", damaged)
    with lookup_runner.start("denied", params(lookup, start_days="2", interval="10"), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_for_events(len(expected), timeout=90)  # eu-west-1 comes on the next pass
        time.sleep(12)
        assert running.terminate() == 0
        log = lookup_runner.input_log("denied")
    assert event_ids(running.events) == expected
    assert "cloudtrail:LookupEvents" in log and "access denied" in log
    assert log.count(f"event {damaged.event_id} has a CloudTrailEvent that is not a JSON object") == 1


def test_all_regions_skips_a_region_the_account_has_not_enabled_with_one_info_line(lookup, splunkd, lookup_runner):
    lookup.disabled_regions.add("ap-east-1")
    expected, _ = _load_small(lookup, 50, 1100)
    with lookup_runner.start("everywhere", params(lookup, regions="all", interval="10"), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_for_events(len(expected), timeout=120)
        time.sleep(12)
        assert running.terminate() == 0
        log = lookup_runner.input_log("everywhere")
    assert event_ids(running.events) == expected
    assert log.count("region ap-east-1 is not enabled for this account") == 1
    assert "ERROR" not in log


def test_validation_on_save(lookup, splunkd, lookup_runner):
    good = lookup_runner.validate("history", params(lookup), splunkd)
    assert good.returncode == 0, good.message
    bad = lookup_runner.validate("history", params(lookup, event_selector="s3-List", start_days="120"), splunkd)
    assert bad.returncode != 0
    assert "Event selector (event_selector)" in bad.message and "'s3-List'" in bad.message
    assert "Start (days back) (start_days) must be between 1 and 90" in bad.message
    # "all": checked in the partition's first region, not in an opt-in region the account may not have enabled
    lookup.disabled_regions.add("af-south-1")
    everywhere = lookup_runner.validate("history", params(lookup, regions="all"), splunkd)
    assert everywhere.returncode == 0, everywhere.message
    lookup.fail_next(REGIONS[0], "AccessDeniedException", "not authorized to perform: cloudtrail:LookupEvents")
    denied = lookup_runner.validate("history", params(lookup), splunkd)
    assert denied.returncode != 0 and "allow cloudtrail:LookupEvents" in denied.message


def test_insights_events_are_read_as_a_stream_of_their_own_when_asked(lookup, splunkd, lookup_runner):
    expected, _ = _load_small(lookup, 100, 1300)
    now = datetime.now(timezone.utc)
    insights = spread(
        make_records(30, seed=1301, first_index=700_000), now - timedelta(hours=6), 3600, random.Random(3)
    )
    lookup.add_events("us-east-1", lookup_events_from_records(insights, insight=True))
    with lookup_runner.start("management", params(lookup, start_days="2"), splunkd) as running:
        ARTIFACTS.runs.append(running)
        running.wait_until(lambda: "Event history pass done" in lookup_runner.input_log("management"), timeout=90)
        assert running.terminate() == 0
    assert event_ids(running.events) == expected  # Insights only when asked
    with lookup_runner.start("with_insights", params(lookup, start_days="2", include_insights="1"), splunkd) as both:
        ARTIFACTS.runs.append(both)
        both.wait_until(lambda: "Event history pass done" in lookup_runner.input_log("with_insights"), timeout=90)
        assert both.terminate() == 0
    assert event_ids(both.events) == expected + Counter(r["eventID"] for r in insights)
    streams = {d["stream"] for d in splunkd.kv_documents("ta_aws_cloudtrail_lookup") if d["input"] == "with_insights"}
    assert {f"acct:{r}:insight" for r in REGIONS} <= streams
