import json
import re

import pytest

from ta_aws_cloudtrail.batches import MAX_BATCH_EVENTS, event_batches
from ta_aws_cloudtrail.events import EventFormatter
from ta_aws_cloudtrail.filters import RecordFilter

EVENTS = EventFormatter("aws_cloudtrail_sqs://t", "main", None).for_object("s3://b/k", "aws:cloudtrail")


def records(n, name="GetObject"):
    for i in range(n):
        record = {"eventTime": "2024-05-01T12:00:00Z", "eventName": name, "eventID": str(i)}
        yield json.dumps(record, separators=(",", ":")), record


def written_ids(batches):
    return [int(re.search(r'"eventID":"(\d+)"', e).group(1)) for b in batches for e in b.events]


def test_batches_are_bounded_and_cover_every_record():
    batches = list(event_batches(records(1234), EVENTS))
    assert [len(b.events) for b in batches] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 234]
    assert [b.records_done for b in batches] == [500, 1000, 1234]
    assert written_ids(batches) == list(range(1234))
    assert batches[-1].newest_record["eventID"] == "1233"


def test_large_events_close_a_batch_by_size():
    big = {"eventTime": "2024-05-01T12:00:00Z", "pad": "x" * 300_000}
    text = json.dumps(big, separators=(",", ":"))
    batches = list(event_batches(((text, big) for _ in range(7)), EVENTS))
    assert [len(b.events) for b in batches] == [4, 3]  # 4 x 300 KB reach MAX_BATCH_BYTES


def test_resume_filters_and_non_objects_are_counted_and_covered():
    def mixed():
        yield from records(3)  # 1..3: before the resume point
        yield "null", None  # 4: not an object
        yield from records(2, name="DescribeInstances")  # 5..6: filtered
        yield from records(2)  # 7..8: written
        yield '{"recipientAccountId":"999999999999"}', {"recipientAccountId": "999999999999"}  # 9: rejected

    record_filter = RecordFilter(exclude_event_names=re.compile("^Describe"), allowed_accounts=frozenset({"1" * 12}))
    [batch] = list(event_batches(mixed(), EVENTS, record_filter, resume_from=3))
    assert len(batch.events) == 2 and batch.records_done == 9
    assert batch.counts == {
        "records_filtered": 2,
        "records_invalid": 1,
        "records_rejected": 1,
        "records_skipped_resume": 3,
    }


def test_a_failure_hands_over_what_was_read_before_it():
    def broken():
        yield from records(700)
        raise ValueError("corrupt gzip")

    batches = event_batches(broken(), EVENTS)
    first, second = next(batches), next(batches)
    assert (len(first.events), len(second.events), second.records_done) == (500, 200, 700)
    with pytest.raises(ValueError, match="corrupt gzip"):
        next(batches)
