"""cloudwatch_logs_settings: parsing a stanza, log group names and ARNs, the stream filter's literal prefix."""

from __future__ import annotations

import re

import pytest

from ta_aws_cloudtrail.cloudwatch_logs_input import Position
from ta_aws_cloudtrail.cloudwatch_logs_settings import literal_prefix, parse_cloudwatch_logs_settings
from ta_aws_cloudtrail.settings import ConfigError

STANZA = "aws_cloudtrail_cloudwatch_logs://trail"


def parse(**params):
    values = {"account": "acct", "region": "us-east-1", "log_groups": "aws-controltower/CloudTrailLogs"}
    values.update(params)
    return parse_cloudwatch_logs_settings(STANZA, values)


def test_defaults() -> None:
    settings = parse()
    assert settings.log_groups == ("aws-controltower/CloudTrailLogs",)
    assert (settings.start_position, settings.delay_seconds, settings.interval) == ("now", 300, 60)
    assert settings.sourcetype == "aws:cloudtrail" and settings.stream_filter is None
    assert settings.wants_stream("anything") and settings.stream_prefix is None


def test_names_and_arns_of_the_input_region_are_read_duplicates_once() -> None:
    arn = "arn:aws:logs:us-east-1:111122223333:log-group"
    settings = parse(log_groups=f"a/b, {arn}:a/b:*, {arn}:c")
    assert settings.log_groups == ("a/b", "c") and settings.arn_accounts == ("111122223333",)


@pytest.mark.parametrize(
    "params, phrase",
    [
        ({"log_groups": "arn:aws:logs:eu-west-1:111122223333:log-group:a"}, "is in region eu-west-1"),
        ({"log_groups": "bad name!"}, "takes names"),
        ({"log_groups": ""}, "is required"),
        ({"stream_filter": "(["}, "not a valid regular expression"),
        ({"start_position": "yesterday"}, "Start position"),
        ({"delay_minutes": "-1"}, "Late-event allowance"),
        ({"interval": "5"}, "Interval"),
        ({"region": "mars"}, "Region"),
        ({"account": ""}, "AWS account"),
        ({"logs_endpoint_url": "ftp://x"}, "CloudWatch Logs endpoint URL"),
    ],
)
def test_each_problem_is_named(params, phrase) -> None:
    with pytest.raises(ConfigError, match=re.escape(phrase)):
        parse(**params)


def test_start_positions() -> None:
    now = 1_800_000_000_000
    assert parse(start_position="beginning").start_millis(now) == 0
    assert parse(start_position="now").start_millis(now) == now
    assert parse(start_position="2026-12-01").start_millis(now) == 1_796_083_200_000


@pytest.mark.parametrize(
    "pattern, prefix",
    [
        ("^111122223333_CloudTrail_", "111122223333_CloudTrail_"),
        (r"^111122223333_CloudTrail_us-east-\d", "111122223333_CloudTrail_us-east-"),
        (r"^a\.b", "a.b"),
        ("^abc*", "ab"),  # c may be absent
        ("^ab?", "a"),
        ("^a{2}", None),
        ("^abc|^xyz", None),
        ("^(abc|xyz)", None),
        ("CloudTrail", None),  # not anchored
        ("^.*CloudTrail", None),
        ("(?i)^abc", None),
    ],
)
def test_a_literal_prefix_is_sent_only_when_every_match_starts_with_it(pattern, prefix) -> None:
    assert literal_prefix(pattern) == prefix


def test_the_stream_filter_is_searched_not_matched() -> None:
    settings = parse(stream_filter="CloudTrail_eu-")
    assert settings.wants_stream("111122223333_CloudTrail_eu-west-1")
    assert not settings.wants_stream("111122223333_CloudTrail_us-east-1")


def test_a_position_round_trips_through_its_text() -> None:
    position = Position(1_800_000_000_123, {"b", "a"})
    assert Position.decode(position.encode()) == position
    assert position.encode() == '{"millis":1800000000123,"ids":["a","b"]}'
