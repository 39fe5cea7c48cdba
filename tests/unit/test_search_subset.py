"""harness/search_subset.py: the SPL subset the add-on's event types and alert base searches are written in."""

from __future__ import annotations

import pytest

from harness.search_subset import SearchSyntaxError, base_search, flatten, parse

RECORD = {
    "eventName": "RunInstances",
    "eventSource": "ec2.amazonaws.com",
    "readOnly": False,
    "errorCode": None,
    "userIdentity": {"type": "IAMUser", "userName": "alice"},
    "responseElements": {"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}},
}


def test_flatten_uses_splunks_json_field_names() -> None:
    fields = flatten(RECORD)
    assert fields["userIdentity.type"] == ["IAMUser"]
    assert fields["responseElements.instancesSet.items{}.instanceId"] == ["i-1", "i-2"]
    assert fields["readOnly"] == ["false"] and "errorCode" not in fields
    assert fields["sourcetype"] == ["aws:cloudtrail"]


@pytest.mark.parametrize(
    "search, expected",
    [
        ("eventName=RunInstances", True),
        ("eventName=runinstances", True),  # values compare case-insensitively
        ("eventName=Run*", True),
        ("eventName=*Instance", False),
        ("readOnly=false", True),
        ("errorCode=*", False),
        ("NOT errorCode=*", True),
        ("responseElements.instancesSet.items{}.instanceId=i-2", True),
        ("eventName IN (StartInstances, Run*)", True),
        ("eventName IN (StartInstances, StopInstances)", False),
        ("eventName=RunInstances userIdentity.type=Root", False),
        ("eventName=RunInstances AND userIdentity.type=IAMUser", True),
        ("eventName=StopInstances OR userIdentity.userName=alice", True),
        ("NOT eventName=RunInstances OR eventSource=ec2.amazonaws.com", True),  # NOT binds tighter than OR
        ("NOT (eventName=RunInstances OR eventSource=x)", False),
        ('userIdentity.userName="alice"', True),
        ("sourcetype=aws:cloudtrail", True),
        ("eventName!=RunInstances", False),
    ],
)
def test_matching(search: str, expected: bool) -> None:
    assert parse(search).matches(RECORD) is expected


@pytest.mark.parametrize(
    "search", ["RunInstances", "eventName=", "(eventName=x", "eventName IN (a b)", "eventName IN ()"]
)
def test_outside_the_subset_is_an_error(search: str) -> None:
    with pytest.raises(SearchSyntaxError):
        parse(search)


def test_fields_are_collected_and_the_base_search_ends_at_the_first_pipe() -> None:
    search = parse("sourcetype=aws:cloudtrail (eventName=A OR errorCode IN (x, y)) NOT readOnly=true")
    assert search.fields == {"sourcetype", "eventName", "errorCode", "readOnly"}
    assert base_search('a=1 b="x|y" | stats count | where c>1') == 'a=1 b="x|y"'
