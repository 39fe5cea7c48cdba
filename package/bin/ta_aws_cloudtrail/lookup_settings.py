"""The settings of an aws_cloudtrail_lookup stanza (CloudTrail Event history), and its event selectors.

A selector is ``service:EventNamePattern`` (``s3:List*``, ``iam:*``, ``ec2:RunInstances``): the service is the
prefix of the event source (``s3`` -> ``s3.amazonaws.com``), the pattern a shell glob on eventName. LookupEvents
takes one lookup attribute per call: when every selector names the same service, the call asks for that
EventSource (the API filters); otherwise, or for the name patterns, the input filters what it receives.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import FrozenSet, List, Mapping, Optional, Tuple

from .settings import _REGION, ConfigError, _csv, _flag, _Problems, _text

SCHEME = "aws_cloudtrail_lookup"
MAX_START_DAYS = 90  # what Event history keeps
_SELECTOR = re.compile(r"^([a-z0-9][a-z0-9-]*):([A-Za-z0-9*?\[\]!-]+)$")


@dataclass(frozen=True)
class EventSelector:
    service: str
    pattern: str

    @property
    def event_source(self) -> str:
        return f"{self.service}.amazonaws.com"

    def matches(self, event_source: str, event_name: str) -> bool:
        return event_source == self.event_source and fnmatch.fnmatchcase(event_name, self.pattern)


def parse_selectors(text: Optional[str]) -> Tuple[List[EventSelector], List[str]]:
    """(selectors, the items that are not ``service:Pattern``)."""
    selectors, bad = [], []
    for item in _csv(text):
        match = _SELECTOR.match(item)
        if not match:
            bad.append(item)
            continue
        selectors.append(EventSelector(match.group(1), match.group(2)))
    return selectors, bad


@dataclass(frozen=True)
class LookupSettings:
    name: str
    stanza: str
    account: str
    iam_role: Optional[str]
    regions: Tuple[str, ...]  # empty: every CloudTrail region of the account's partition ("all")
    start_days: int
    selectors: Tuple[EventSelector, ...]
    exclude_read_only: bool
    include_insights: bool
    delay_seconds: int
    interval: int
    index: Optional[str]
    host: Optional[str]
    sourcetype: str
    cloudtrail_endpoint_url: Optional[str]
    sts_endpoint_url: Optional[str]
    region: str = "us-east-1"  # where AssumeRole is called
    ca_bundle: Optional[str] = None
    s3_endpoint_url: Optional[str] = None
    max_in_flight: int = 4

    @property
    def all_regions(self) -> bool:
        return not self.regions

    @property
    def event_sources(self) -> FrozenSet[str]:
        return frozenset(s.event_source for s in self.selectors)

    def lookup_attribute(self) -> Optional[dict]:
        """The one attribute a call can filter on: the selectors' event source if it is one, else ReadOnly=false
        when read-only events are excluded."""
        if len(self.event_sources) == 1:
            return {"AttributeKey": "EventSource", "AttributeValue": next(iter(self.event_sources))}
        if self.exclude_read_only and not self.selectors:
            return {"AttributeKey": "ReadOnly", "AttributeValue": "false"}
        return None

    def wanted(self, event_source: str, event_name: str, read_only: bool) -> bool:
        if self.exclude_read_only and read_only:
            return False
        return not self.selectors or any(s.matches(event_source, event_name) for s in self.selectors)


def parse_lookup_settings(stanza: str, params: Mapping[str, object]) -> LookupSettings:
    problems = _Problems()
    name = stanza.split("://", 1)[1] if "://" in stanza else stanza
    account = _text(params, "account")
    if not account:
        problems.items.append("AWS account (account) is required: choose one from Configuration > AWS Accounts")
    regions_text = _text(params, "regions") or "all"
    regions: List[str] = [] if regions_text.lower() == "all" else _csv(regions_text)
    bad_regions = [r for r in regions if not _REGION.match(r)]
    if bad_regions:
        problems.items.append(f"Regions (regions) must be 'all' or look like us-east-1: {', '.join(bad_regions)}")
    selectors, bad = parse_selectors(_text(params, "event_selector"))
    if bad:
        problems.items.append(
            "Event selector (event_selector) takes service:EventNamePattern items such as s3:List* or iam:*, got "
            + ", ".join(repr(b) for b in bad)
        )
    index = _text(params, "index")
    host = _text(params, "host")
    settings = LookupSettings(
        name=name,
        stanza=stanza,
        account=account or "",
        iam_role=_text(params, "aws_iam_role"),
        regions=tuple(dict.fromkeys(regions)),
        start_days=problems.integer(params, "start_days", "Start (days back)", 1, MAX_START_DAYS, 1),
        selectors=tuple(selectors),
        exclude_read_only=_flag(params, "exclude_read_only", False),
        include_insights=_flag(params, "include_insights", False),
        delay_seconds=60 * problems.integer(params, "delay_minutes", "Late-event allowance (minutes)", 0, 1440, 15),
        interval=problems.integer(params, "interval", "Interval", 10, 86400, 300),
        index=None if index in (None, "default") else index,
        host=None if host is None or host.startswith("$") else host,
        sourcetype=_text(params, "sourcetype") or "aws:cloudtrail",
        cloudtrail_endpoint_url=problems.url(params, "cloudtrail_endpoint_url", "CloudTrail endpoint URL"),
        sts_endpoint_url=problems.url(params, "sts_endpoint_url", "STS endpoint URL"),
        region=(regions[0] if regions else "us-east-1"),
    )
    if problems.items:
        raise ConfigError(f"Input {name!r} is misconfigured: " + "; ".join(problems.items))
    return settings
