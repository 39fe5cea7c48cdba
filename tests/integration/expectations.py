"""What the input must have written, computed independently of the add-on's code."""

import json
import os
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from harness.modinput import ParsedEvent

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


def fixture_records(relative_path: str) -> List[dict]:
    """Real CloudTrail records from tests/fixtures/cloudtrail (arrays, or {"Records": [...]})."""
    with open(os.path.join(FIXTURES, "cloudtrail", relative_path), encoding="utf-8") as f:
        document = json.load(f)
    return document["Records"] if isinstance(document, dict) else document


def stratus_records(limit_files: int = 35) -> List[dict]:
    directory = os.path.join(FIXTURES, "cloudtrail", "stratus-red-team")
    records: List[dict] = []
    for name in sorted(os.listdir(directory))[:limit_files]:
        records.extend(fixture_records(os.path.join("stratus-red-team", name)))
    return records


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def epoch_text(event_time: str) -> str:
    """CloudTrail eventTime -> epoch seconds with 3 decimals, computed with datetime (not the add-on's code)."""
    moment = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return f"{moment.timestamp():.3f}"


def assert_exact_events(
    events: Sequence[ParsedEvent],
    records_by_source: Dict[str, Iterable[dict]],
    *,
    index: str = "main",
    sourcetype: str = "aws:cloudtrail",
    stanza: Optional[str] = None,
) -> None:
    """Each record exactly once (no loss, no duplicate), with _time, source, sourcetype, index and compact data."""
    expected = Counter()
    for source, records in records_by_source.items():
        for record in records:
            expected[(source, canonical(record))] += 1
    seen = Counter()
    for event in events:
        data = json.loads(event.data)
        seen[(event.source, canonical(data))] += 1
        assert event.sourcetype == sourcetype and event.index == index
        assert event.time == epoch_text(data["eventTime"]), (event.time, data["eventTime"])
        assert "\n" not in event.data and not event.data.startswith(" ")
        assert event.unbroken and event.done
        if stanza is not None:
            assert event.stanza == stanza
    missing = expected - seen
    extra = seen - expected
    assert not missing, f"{sum(missing.values())} records missing, e.g. {list(missing)[:1]}"
    assert not extra, f"{sum(extra.values())} unexpected or duplicated events, e.g. {list(extra)[:1]}"


def event_ids(events: Sequence[ParsedEvent]) -> Counter:
    """How many times each eventID was written."""
    return Counter(json.loads(event.data)["eventID"] for event in events)


def error_lines(log_text: str) -> List[str]:
    return [line for line in log_text.splitlines() if "log_level=ERROR" in line]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
