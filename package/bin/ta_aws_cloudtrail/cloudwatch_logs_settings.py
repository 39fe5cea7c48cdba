"""The settings of an aws_cloudtrail_cloudwatch_logs stanza: which log groups of one region, which streams, from when.

Log groups are names or ARNs (``arn:aws:logs:<region>:<account>:log-group:<name>[:*]``); an ARN must be in the
input's region. The stream filter is a regular expression on the stream name (searched, as ``re.search`` does);
when it starts with ``^`` and a literal text, that text is also sent as FilterLogEvents' logStreamNamePrefix so
that other streams are not read at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import List, Mapping, Optional, Pattern, Tuple

from .settings import _REGION, ConfigError, _csv, _Problems, _text

SCHEME = "aws_cloudtrail_cloudwatch_logs"
_LOG_GROUP_NAME = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
_LOG_GROUP_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:logs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):log-group:(?P<name>[^:]+)(?::\*)?$"
)
# characters that stand for themselves in a regex and may occur in a stream name
_LITERAL = re.compile(r"[A-Za-z0-9_\-/#:@ ]|\\[.\-/#:@$\[\]()*+?{}|^\\]")
_QUANTIFIERS = ("*", "?", "{")


@dataclass(frozen=True)
class CloudWatchLogsSettings:
    name: str
    stanza: str
    account: str
    iam_role: Optional[str]
    region: str
    log_groups: Tuple[str, ...]
    arn_accounts: Tuple[str, ...]  # the accounts named by log group ARNs (they must be the credentials' own)
    stream_filter: Optional[Pattern[str]]
    start_position: str  # "beginning", "now" or YYYY-MM-DD
    delay_seconds: int
    interval: int
    index: Optional[str]
    host: Optional[str]
    sourcetype: str
    logs_endpoint_url: Optional[str]
    sts_endpoint_url: Optional[str]
    ca_bundle: Optional[str] = None
    s3_endpoint_url: Optional[str] = None
    max_in_flight: int = 4

    def start_millis(self, now_millis: int) -> int:
        """Where a log group read for the first time starts (epoch milliseconds)."""
        if self.start_position == "beginning":
            return 0
        if self.start_position == "now":
            return now_millis
        day = date.fromisoformat(self.start_position)
        return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)

    @property
    def stream_prefix(self) -> Optional[str]:
        return literal_prefix(self.stream_filter.pattern) if self.stream_filter else None

    def wants_stream(self, stream_name: str) -> bool:
        return self.stream_filter is None or self.stream_filter.search(stream_name) is not None


def foreign_accounts(settings: CloudWatchLogsSettings, session) -> List[str]:
    """The accounts of log group ARNs that are not the credentials' own (one STS call, only when ARNs are given):
    FilterLogEvents takes the group's name, so another account's group cannot be read here."""
    if not settings.arn_accounts:
        return []
    sts = session.client("sts", region_name=settings.region, endpoint_url=settings.sts_endpoint_url)
    own = sts.get_caller_identity()["Account"]
    return [account for account in settings.arn_accounts if account != own]


def literal_prefix(pattern: str) -> Optional[str]:
    """The text every match of ``^<pattern>`` starts with, or None (pattern not anchored, no literal start, or an
    alternation, which could undo the anchor)."""
    if not pattern.startswith("^") or "|" in pattern:
        return None
    characters: List[str] = []
    position = 1
    while True:
        match = _LITERAL.match(pattern, position)
        if match is None:
            break
        if pattern[match.end() : match.end() + 1] in _QUANTIFIERS:
            break  # the character may be absent or repeated
        characters.append(match.group()[-1])
        position = match.end()
    return "".join(characters) or None


def parse_log_groups(text: Optional[str], region: str, problems: _Problems) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(the log group names, the accounts their ARNs name)."""
    names: List[str] = []
    accounts: List[str] = []
    for item in _csv(text):
        arn = _LOG_GROUP_ARN.match(item)
        if arn:
            if arn.group("region") != region:
                problems.items.append(
                    f"Log group {item} is in region {arn.group('region')}; this input reads region {region}"
                )
                continue
            names.append(arn.group("name"))
            accounts.append(arn.group("account"))
        elif _LOG_GROUP_NAME.match(item):
            names.append(item)
        else:
            problems.items.append(
                f"Log groups (log_groups) takes names (letters, digits and . - _ / #) or log group ARNs, got {item!r}"
            )
    if not names and not problems.items:
        problems.items.append("Log groups (log_groups) is required: one or more log group names or ARNs")
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(accounts))


def parse_cloudwatch_logs_settings(stanza: str, params: Mapping[str, object]) -> CloudWatchLogsSettings:
    problems = _Problems()
    name = stanza.split("://", 1)[1] if "://" in stanza else stanza
    account = _text(params, "account")
    if not account:
        problems.items.append("AWS account (account) is required: choose one from Configuration > AWS Accounts")
    region = _text(params, "region") or ""
    if not _REGION.match(region):
        problems.items.append(f"Region (region) must look like us-east-1, got {region!r}")
    log_groups, arn_accounts = parse_log_groups(_text(params, "log_groups"), region, problems)
    stream_filter: Optional[Pattern[str]] = None
    stream_text = _text(params, "stream_filter")
    if stream_text:
        try:
            stream_filter = re.compile(stream_text)
        except re.error as exc:
            problems.items.append(f"Stream filter (stream_filter) is not a valid regular expression: {exc}")
    start_position = (_text(params, "start_position") or "now").lower()
    if start_position not in ("beginning", "now"):
        try:
            date.fromisoformat(start_position)
        except ValueError:
            problems.items.append(
                f"Start position (start_position) is beginning, now or a date YYYY-MM-DD, got {start_position!r}"
            )
            start_position = "now"
    index = _text(params, "index")
    host = _text(params, "host")
    settings = CloudWatchLogsSettings(
        name=name,
        stanza=stanza,
        account=account or "",
        iam_role=_text(params, "aws_iam_role"),
        region=region,
        log_groups=log_groups,
        arn_accounts=arn_accounts,
        stream_filter=stream_filter,
        start_position=start_position,
        delay_seconds=60 * problems.integer(params, "delay_minutes", "Late-event allowance (minutes)", 0, 1440, 5),
        interval=problems.integer(params, "interval", "Interval", 10, 86400, 60),
        index=None if index in (None, "default") else index,
        host=None if host is None or host.startswith("$") else host,
        sourcetype=_text(params, "sourcetype") or "aws:cloudtrail",
        logs_endpoint_url=problems.url(params, "logs_endpoint_url", "CloudWatch Logs endpoint URL"),
        sts_endpoint_url=problems.url(params, "sts_endpoint_url", "STS endpoint URL"),
    )
    if problems.items:
        raise ConfigError(f"Input {name!r} is misconfigured: " + "; ".join(problems.items))
    return settings
