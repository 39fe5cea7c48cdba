"""The records of one object -> batches of events to write, with the progress each batch covers.

The input writes a batch, flushes it, then reports its `records_done` as progress; the benchmark runs this
same loop. Records before `resume_from` (written by an earlier, interrupted run), non-objects and records a
filter drops are counted, not written, but they are covered by `records_done` like the written ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from .events import ObjectEvents
from .filters import RecordFilter

MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1 << 20


@dataclass
class EventBatch:
    events: List[str]
    records_done: int  # records of the object handled once this batch is written (written or not)
    newest_record: Optional[dict]  # the last record written, for the lag metric
    counts: Dict[str, int] = field(default_factory=dict)  # records skipped since the previous batch, by reason


def event_batches(
    records: Iterable[Tuple[str, Any]],
    object_events: ObjectEvents,
    record_filter: Optional[RecordFilter] = None,
    resume_from: int = 0,
) -> Iterator[EventBatch]:
    """Batches of at most MAX_BATCH_EVENTS events or MAX_BATCH_BYTES, the last one possibly empty.

    If reading the records fails, the events formatted before the failure come out as one more batch and
    the exception is raised when the consumer asks for the next one: nothing read is lost.
    """
    events: List[str] = []
    size = 0
    index = 0
    newest: Optional[dict] = None
    counts = {"records_filtered": 0, "records_invalid": 0, "records_rejected": 0, "records_skipped_resume": 0}
    try:
        for text, record in records:
            index += 1
            if index <= resume_from:
                counts["records_skipped_resume"] += 1
                continue
            if type(record) is not dict:
                counts["records_invalid"] += 1
                continue
            if record_filter is not None:
                reason = record_filter.reason_to_drop(record)
                if reason is not None:
                    counts["records_rejected" if reason == "account" else "records_filtered"] += 1
                    continue
            event = object_events.format(text, record)
            events.append(event)
            size += len(event)
            newest = record
            if len(events) >= MAX_BATCH_EVENTS or size >= MAX_BATCH_BYTES:
                yield EventBatch(events, index, newest, counts)
                events, size, newest = [], 0, None
                counts = dict.fromkeys(counts, 0)
    except Exception:
        yield EventBatch(events, index, newest, counts)
        raise
    yield EventBatch(events, index, newest, counts)
