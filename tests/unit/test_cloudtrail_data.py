"""The CloudTrail record generator: realistic shape, sizes, determinism, serialisation."""

import gzip
import json
import random
import re
import statistics
from datetime import datetime, timezone

import pytest

from harness.cloudtrail_data import (
    DEFAULT_START_TIME,
    LARGE_RECORD_MAX_BYTES,
    LARGE_RECORD_MIN_BYTES,
    gzip_log_file,
    log_file_json,
    make_record,
    make_records,
    record_index,
    record_json,
)

REQUIRED_FIELDS = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "requestID",
    "eventID",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
)
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _size(record: dict) -> int:
    return len(record_json(record).encode("utf-8"))


@pytest.fixture(scope="module")
def sample() -> list:
    return make_records(1000, seed=11)


def test_required_fields_and_types(sample: list) -> None:
    for record in sample:
        missing = [field for field in REQUIRED_FIELDS if field not in record]
        assert not missing, f"record {record['eventID']} lacks {missing}"
        assert record["eventVersion"] in ("1.08", "1.09", "1.10")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["eventTime"])
        assert record["eventSource"].endswith(".amazonaws.com")
        assert UUID_PATTERN.match(record["eventID"])
        assert UUID_PATTERN.match(record["requestID"])
        assert isinstance(record["readOnly"], bool)
        assert record["eventType"] == "AwsApiCall"
        assert record["managementEvent"] is True
        assert record["eventCategory"] == "Management"
        assert record["recipientAccountId"] == "123456789012"


def test_event_mix_is_realistic(sample: list) -> None:
    identity_types = {record["userIdentity"]["type"] for record in sample}
    assert identity_types == {"IAMUser", "AssumedRole", "AWSService", "Root"}
    names = {record["eventName"] for record in sample}
    assert any(name.startswith("Describe") for name in names)
    assert any(name.startswith("List") for name in names)
    assert any(name.startswith("Get") for name in names)
    assert {"RunInstances", "PutRolePolicy"} & names
    read_only_share = sum(record["readOnly"] for record in sample) / len(sample)
    assert 0.7 < read_only_share < 0.95
    assert any(
        isinstance(record["requestParameters"], dict)
        and any(isinstance(value, dict) for value in record["requestParameters"].values())
        for record in sample
    ), "no nested requestParameters"
    assert any(record["responseElements"] for record in sample)
    assert any("errorCode" in record for record in sample)


def test_user_agents_carry_xml_special_and_non_ascii_characters(sample: list) -> None:
    agents = [record["userAgent"] for record in sample]
    for needle in ("<", "&", '"', "'", "]]>"):
        assert any(needle in agent for agent in agents), f"no userAgent contains {needle!r}"
    assert any(not agent.isascii() for agent in agents)
    assert sum(agent.isascii() and "<" not in agent for agent in agents) > len(agents) / 2


def test_normal_records_are_about_1_3_kb(sample: list) -> None:
    sizes = [_size(record) for record in sample]
    assert 1150 <= statistics.mean(sizes) <= 1450
    assert min(sizes) >= 500
    assert max(sizes) <= 2500


def test_large_records_are_between_50_and_256_kb() -> None:
    records = make_records(12, seed=3, size="large")
    sizes = [_size(record) for record in records]
    assert all(LARGE_RECORD_MIN_BYTES - 64 <= size <= LARGE_RECORD_MAX_BYTES for size in sizes), sizes
    assert max(sizes) - min(sizes) > 50 * 1024, "large sizes should spread over the range"
    items = records[0]["requestParameters"]["instancesSet"]["items"]
    assert len(items) > 1000 and all(item["instanceId"].startswith("i-0") for item in items)


def test_same_seed_same_bytes_and_different_seed_different_records() -> None:
    assert gzip_log_file(make_records(50, seed=5)) == gzip_log_file(make_records(50, seed=5))
    assert make_records(50, seed=5) != make_records(50, seed=6)
    first = make_record(random.Random(9), 0, event_time=DEFAULT_START_TIME)
    again = make_record(random.Random(9), 0, event_time=DEFAULT_START_TIME)
    assert first == again


def test_event_ids_are_unique_and_encode_the_index() -> None:
    records = make_records(300, seed=2, first_index=1000)
    assert len({record["eventID"] for record in records}) == 300
    assert [record_index(record["eventID"]) for record in records] == list(range(1000, 1300))


def test_event_times_start_at_start_time_and_never_go_backwards() -> None:
    start = datetime(2023, 12, 31, 23, 59, 30, tzinfo=timezone.utc)
    times = [record["eventTime"] for record in make_records(200, seed=4, start_time=start)]
    assert times[0] == "2023-12-31T23:59:30Z"
    assert times == sorted(times)
    assert times[-1] > "2024-01-01T00:00:00Z"


def test_log_file_is_compact_utf8_records_document() -> None:
    records = make_records(40, seed=8)
    document = log_file_json(records)
    assert document.startswith(b'{"Records":[{"eventVersion":')
    assert b", " not in document[:200] and b": " not in document[:200]
    assert json.loads(document.decode("utf-8")) == {"Records": records}
    unpacked = gzip.decompress(gzip_log_file(records))
    assert unpacked == document
    for record in records:
        assert record_json(record).encode("utf-8") in document


def test_non_ascii_is_written_as_utf8_not_escaped() -> None:
    records = [r for r in make_records(400, seed=12) if not r["userAgent"].isascii()]
    assert records
    assert "\\u" not in record_json(records[0])
    encoded_agent = json.dumps(records[0]["userAgent"], ensure_ascii=False).encode("utf-8")
    assert encoded_agent in log_file_json(records)


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="size"):
        make_record(random.Random(1), 0, event_time=DEFAULT_START_TIME, size="huge")
    with pytest.raises(ValueError, match="timezone"):
        make_record(random.Random(1), 0, event_time=datetime(2024, 1, 1))
