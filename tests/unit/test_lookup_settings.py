"""Event history settings: selectors, the lookup attribute a call can use, the client-side filter, validation."""

import pytest

from ta_aws_cloudtrail.lookup_settings import parse_lookup_settings, parse_selectors
from ta_aws_cloudtrail.settings import ConfigError

STANZA = "aws_cloudtrail_lookup://history"


def settings(**params):
    return parse_lookup_settings(STANZA, {"account": "acct", **params})


def test_selectors_parse_service_and_glob_and_report_what_does_not():
    selectors, bad = parse_selectors("s3:List*, iam:*, ec2:RunInstances, s3-List, :x")
    assert [(s.service, s.pattern) for s in selectors] == [("s3", "List*"), ("iam", "*"), ("ec2", "RunInstances")]
    assert bad == ["s3-List", ":x"]


def test_one_service_is_asked_of_the_api_and_the_names_filtered_here():
    chosen = settings(event_selector="s3:List*, s3:GetBucketAcl")
    assert chosen.lookup_attribute() == {"AttributeKey": "EventSource", "AttributeValue": "s3.amazonaws.com"}
    assert chosen.wanted("s3.amazonaws.com", "ListBuckets", True)
    assert chosen.wanted("s3.amazonaws.com", "GetBucketAcl", True)
    assert not chosen.wanted("s3.amazonaws.com", "PutObject", False)
    assert not chosen.wanted("iam.amazonaws.com", "ListRoles", True)


def test_several_services_are_filtered_here_and_read_only_alone_is_asked_of_the_api():
    assert settings(event_selector="s3:List*, iam:*").lookup_attribute() is None
    writes = settings(exclude_read_only="1")
    assert writes.lookup_attribute() == {"AttributeKey": "ReadOnly", "AttributeValue": "false"}
    assert not writes.wanted("ec2.amazonaws.com", "DescribeInstances", True)
    assert writes.wanted("ec2.amazonaws.com", "RunInstances", False)


def test_defaults_and_all_regions():
    chosen = settings()
    assert chosen.all_regions and chosen.start_days == 1 and chosen.delay_seconds == 900 and chosen.interval == 300
    assert settings(regions="us-east-1, eu-west-1,us-east-1").regions == ("us-east-1", "eu-west-1")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start_days": "91"}, "Start (days back) (start_days) must be between 1 and 90"),
        ({"event_selector": "List*"}, "Event selector (event_selector)"),
        ({"regions": "us-east-1,nowhere"}, "Regions (regions) must be 'all' or look like us-east-1: nowhere"),
        ({"cloudtrail_endpoint_url": "ftp://x"}, "CloudTrail endpoint URL (cloudtrail_endpoint_url)"),
    ],
)
def test_bad_settings_say_which_field_and_why(params, message):
    with pytest.raises(ConfigError) as error:
        settings(**params)
    assert message in str(error.value)
