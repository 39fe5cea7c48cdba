"""filters.py: which records an input drops, and why."""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest

from ta_aws_cloudtrail.filters import RecordFilter

RECORD = {
    "eventName": "DescribeInstances",
    "eventSource": "ec2.amazonaws.com",
    "readOnly": True,
    "recipientAccountId": "123456789012",
}


def with_field(name: str, value: Any) -> dict:
    """RECORD with one field replaced (or removed, for the MISSING marker)."""
    record = dict(RECORD)
    if value is MISSING:
        del record[name]
    else:
        record[name] = value
    return record


MISSING = object()


def test_the_empty_filter_keeps_everything_and_says_it_is_empty() -> None:
    record_filter = RecordFilter()
    assert record_filter.is_empty
    assert record_filter.reason_to_drop(RECORD) is None
    assert record_filter.reason_to_drop({}) is None


@pytest.mark.parametrize(
    "record_filter",
    [
        RecordFilter(exclude_event_names=re.compile("x")),
        RecordFilter(exclude_read_only=True),
        RecordFilter(include_event_sources=frozenset({"s3.amazonaws.com"})),
        RecordFilter(exclude_event_sources=frozenset({"s3.amazonaws.com"})),
        RecordFilter(allowed_accounts=frozenset({"123456789012"})),
    ],
)
def test_any_rule_makes_the_filter_non_empty(record_filter: RecordFilter) -> None:
    assert not record_filter.is_empty


@pytest.mark.parametrize(
    ("event_name", "expected"),
    [
        ("DescribeInstances", "event_name"),
        ("ListBuckets", "event_name"),
        ("GetObject", None),
        ("RunInstances", None),
        (MISSING, None),
        (None, None),
        (42, None),
        (["DescribeInstances"], None),
    ],
)
def test_event_name_regex_searches_the_event_name(event_name: Any, expected: Optional[str]) -> None:
    record_filter = RecordFilter(exclude_event_names=re.compile(r"^(Describe|List)"))
    assert record_filter.reason_to_drop(with_field("eventName", event_name)) == expected


def test_event_name_regex_is_a_search_not_a_full_match() -> None:
    record_filter = RecordFilter(exclude_event_names=re.compile("Instances"))
    assert record_filter.reason_to_drop(RECORD) == "event_name"


@pytest.mark.parametrize(
    ("read_only", "expected"),
    [
        (True, "read_only"),
        ("true", "read_only"),
        ("TRUE", "read_only"),
        (False, None),
        ("false", None),
        (MISSING, None),
        (None, None),
        (1, None),
        ("yes", None),
    ],
)
def test_read_only_drops_records_marked_read_only(read_only: Any, expected: Optional[str]) -> None:
    record = with_field("readOnly", read_only)
    assert RecordFilter(exclude_read_only=True).reason_to_drop(record) == expected
    assert RecordFilter().reason_to_drop(record) is None


@pytest.mark.parametrize(
    ("event_source", "expected"),
    [
        ("ec2.amazonaws.com", None),
        ("s3.amazonaws.com", None),
        ("iam.amazonaws.com", "event_source"),
        (MISSING, "event_source"),
        (["ec2.amazonaws.com"], "event_source"),
    ],
)
def test_included_event_sources_keep_only_those(event_source: Any, expected: Optional[str]) -> None:
    record_filter = RecordFilter(include_event_sources=frozenset({"ec2.amazonaws.com", "s3.amazonaws.com"}))
    assert record_filter.reason_to_drop(with_field("eventSource", event_source)) == expected


@pytest.mark.parametrize(
    ("event_source", "expected"),
    [
        ("kms.amazonaws.com", "event_source"),
        ("ec2.amazonaws.com", None),
        (MISSING, None),
        ({"not": "a string"}, None),
    ],
)
def test_excluded_event_sources_are_dropped(event_source: Any, expected: Optional[str]) -> None:
    record_filter = RecordFilter(exclude_event_sources=frozenset({"kms.amazonaws.com"}))
    assert record_filter.reason_to_drop(with_field("eventSource", event_source)) == expected


def test_an_event_source_both_included_and_excluded_is_dropped() -> None:
    sources = frozenset({"ec2.amazonaws.com"})
    record_filter = RecordFilter(include_event_sources=sources, exclude_event_sources=sources)
    assert record_filter.reason_to_drop(RECORD) == "event_source"


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        ("123456789012", None),
        ("210987654321", "account"),
        (MISSING, None),
        (None, None),
        (123456789012, "account"),
        (["123456789012"], "account"),
    ],
)
def test_allowed_accounts_check_the_recipient_account(account: Any, expected: Optional[str]) -> None:
    record_filter = RecordFilter(allowed_accounts=frozenset({"123456789012", "000000000001"}))
    assert record_filter.reason_to_drop(with_field("recipientAccountId", account)) == expected


def test_rules_are_checked_in_a_fixed_order_and_the_first_reason_is_given() -> None:
    everything = RecordFilter(
        exclude_event_names=re.compile("Describe"),
        exclude_read_only=True,
        exclude_event_sources=frozenset({"ec2.amazonaws.com"}),
        allowed_accounts=frozenset({"999999999999"}),
    )
    assert everything.reason_to_drop(RECORD) == "event_name"
    assert everything.reason_to_drop(with_field("eventName", "RunInstances")) == "read_only"
    record = dict(RECORD, eventName="RunInstances", readOnly=False)
    assert everything.reason_to_drop(record) == "event_source"
    assert everything.reason_to_drop(dict(record, eventSource="s3.amazonaws.com")) == "account"
    kept = dict(record, eventSource="s3.amazonaws.com", recipientAccountId="999999999999")
    assert everything.reason_to_drop(kept) is None
