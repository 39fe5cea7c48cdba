"""Bad inputs through the built input: one queue gets ~45 bodies that are no notification and ~45 objects, most of
them damaged. The process must survive all of it, keep every good record exactly once (and the records before
the damage of damaged objects), say in one clear log line what was wrong with each, and leave each bad body to
the dead-letter queue after `max_receive_count` receives."""

import gzip
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence

from environment import input_params
from expectations import assert_exact_events, wait_for

from harness import bad_inputs as bad
from harness.aws import QueueCounts, cloudtrail_key
from harness.cloudtrail_data import make_records, record_json

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RNG = random.Random(31337)
MAX_RECEIVE_COUNT = 2
MAX_DECOMPRESSED_MB = 1
CAP = MAX_DECOMPRESSED_MB << 20
PROGRESS = "ta_aws_cloudtrail_progress"


@dataclass
class PlannedObject:
    """An object to store, and what the input must make of it."""

    label: str
    data: bytes  # the stored bytes
    good: List[dict]  # the records that must become events, in order
    records_done: int  # array elements read before the damage (records and non-objects): the saved progress
    problem: Optional[str] = None  # a phrase of the ERROR line; None: no ERROR line
    not_objects: int = 0  # elements that are not JSON objects (one WARNING line)
    key: str = field(default_factory=lambda: cloudtrail_key(when=NOW, rng=RNG))


class Records:
    """CloudTrail records with distinct eventIDs across the whole test."""

    def __init__(self) -> None:
        self._next_index = 0

    def make(self, count: int, *, size: str = "normal", extra: Optional[dict] = None) -> List[dict]:
        records = make_records(count, seed=self._next_index + 7, first_index=self._next_index, size=size)
        self._next_index += count
        for record in records:
            record.update(extra or {})
        return records


def document(records: Sequence[dict], layout: str = "compact", odd: Sequence[bytes] = ()) -> bad.Document:
    elements = [bad.element(record_json(record).encode("utf-8")) for record in records]
    for number, text in enumerate(odd):
        elements.insert(2 * number + 1, bad.element(text))
    return bad.build_document(elements, layout)


def offset_in(doc: bad.Document, number: int, marker: bytes, extra: int) -> int:
    """An offset inside element ``number``: ``extra`` bytes after the end of ``marker`` in it."""
    return doc.data.index(marker, doc.starts()[number]) + len(marker) + extra


def packed(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def good_objects(records: Records) -> List[PlannedObject]:
    planned = []
    for count in (1, 3, 8, 25, 60, 120, 5, 2, 40):
        batch = records.make(count)
        planned.append(PlannedObject(f"good gzip, {count} records", packed(document(batch).data), batch, count))
    batch = records.make(12)
    planned.append(PlannedObject("good plain JSON", document(batch).data, batch, 12))
    batch = records.make(30)
    doc = document(batch)
    members = b"".join(packed(doc.data[i : i + 997]) for i in range(0, len(doc.data), 997))
    planned.append(PlannedObject("good multi-member gzip", members, batch, 30))
    batch = records.make(7)
    planned.append(PlannedObject("good pretty with a BOM", packed(document(batch, "bom").data), batch, 7))
    batch = records.make(9)
    planned.append(PlannedObject("good top-level array", packed(document(batch, "array").data), batch, 9))
    batch = records.make(2, size="large") + records.make(3)
    planned.append(PlannedObject("good with 50-256 KB records", packed(document(batch).data), batch, 5))
    batch = records.make(6)
    planned.append(PlannedObject("good pretty-printed", packed(document(batch, "pretty").data), batch, 6))
    return planned


def damaged_objects(records: Records) -> List[PlannedObject]:
    planned = []

    def add(label: str, data: bytes, good: List[dict], done: int, problem: str, not_objects: int = 0) -> None:
        planned.append(PlannedObject(label, data, good, done, problem, not_objects))

    truncated = "The object's JSON ends early (truncated object)"
    batch = records.make(8)
    doc = document(batch)
    add("JSON cut in a string", packed(doc.data[: offset_in(doc, 3, b'"eventName":"', 3)]), batch[:3], 3, truncated)
    batch = records.make(6, extra={"fuzzCount": 12345678})
    doc = document(batch)
    add("JSON cut in a number", packed(doc.data[: offset_in(doc, 2, b'"fuzzCount":', 3)]), batch[:2], 2, truncated)
    batch = records.make(9)
    doc = document(batch)
    add("JSON cut between records", packed(doc.data[: doc.ends[4] + 1]), batch[:5], 5, truncated)
    batch = records.make(6)
    doc = document(batch)
    add("JSON cut after the array", packed(doc.data[:-1]), batch, 6, truncated)
    batch = records.make(4)
    doc = document(batch)
    add("plain JSON cut in a record", doc.data[: doc.ends[1] + 40], batch[:2], 2, truncated)

    gzip_early = "The object's gzip data ends early (truncated object)"
    batch = records.make(30)
    doc = document(batch)
    whole = packed(doc.data)
    cut = len(whole) * 2 // 3
    kept = doc.complete_before(bad.gunzip_prefix_length(whole, cut))
    assert 0 < kept < 30, kept
    add("gzip cut in the compressed data", whole[:cut], batch[:kept], kept, gzip_early)
    batch = records.make(5)
    whole = packed(document(batch).data)
    add("gzip cut in its trailer", whole[:-3], batch, 5, gzip_early)
    add("gzip cut in its header", packed(document(records.make(5)).data)[:6], [], 0, gzip_early)

    batch = records.make(10)
    doc = document(batch)
    split = doc.ends[3] + 1
    bad_member = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xff\xfe"  # a gzip header, then an invalid block type
    add(
        "corrupt deflate data after 4 records",
        packed(doc.data[:split]) + bad_member + packed(doc.data[split:]),
        batch[:4],
        4,
        "The object is not valid gzip data (Error -3 while decompressing data: invalid block type)",
    )
    batch = records.make(7)
    corrupt = bytearray(packed(document(batch).data))
    corrupt[-8] ^= 0x55  # the CRC32: only noticed after all the data
    add("bad gzip CRC", bytes(corrupt), batch, 7, "The object is not valid gzip data (Error -3 while decompressing")
    corrupt = bytearray(packed(document(records.make(3)).data))
    corrupt[2] = 7  # compression method
    add("unknown gzip method", bytes(corrupt), [], 0, "The object is not valid gzip data")

    not_array = 'The object\'s "Records" value is not an array'
    for value in (b"42", b'"records"', b'{"a":[1]}', b"null"):
        add(f"Records is {value.decode()}", packed(b'{"Records":' + value + b"}"), [], 0, not_array)

    batch = records.make(6)
    doc = document(batch)
    add(
        "missing comma after record 3",
        packed(doc.data[: doc.ends[2]] + doc.data[doc.ends[2] + 1 :]),
        batch[:3],
        3,
        "The object is not valid JSON (expected ',' or ']' after an array element), in record 4",
    )
    batch = records.make(5)
    doc = document(batch)
    at = doc.starts()[2] + 1
    add(
        "invalid escape in record 3",
        packed(doc.data[:at] + b'"k":"\\q",' + doc.data[at:]),
        batch[:2],
        2,
        "The object is not valid JSON (invalid \\escape",
    )
    batch = records.make(4)
    doc = document(batch)
    at = doc.starts()[1] + 1
    deep = b'"k":' + b"[" * 100_000 + b"]" * 100_000 + b","
    add("deep nesting in record 2", packed(doc.data[:at] + deep + doc.data[at:]), batch[:1], 1, "nested too deeply")
    batch = records.make(4)
    doc = document(batch)
    add(
        "raw control character between records",
        packed(doc.data[: doc.ends[2]] + b"\x01" + doc.data[doc.ends[2] :]),
        batch[:3],
        3,
        "The object is not valid JSON",
    )
    batch = records.make(3)
    add("data after the document", packed(document(batch).data + b" x"), batch, 3, "unexpected data after the end")

    batch = records.make(5)
    doc = document(batch)
    head = doc.data[: doc.ends[-1]] + b","
    add(
        "20 MiB decompression bomb after 5 records",
        packed(head) + bad.gzip_bomb(b" ", 20 << 20),
        batch,
        5,
        f"The object is larger than the maximum of {CAP} bytes once decompressed, in record 6",
    )
    add("empty object", b"", [], 0, "The object is empty")
    add("empty gzip", packed(b""), [], 0, "The object is empty")
    add("plain text", b"hello, this is not JSON", [], 0, "The object is not JSON")
    add("top-level JSON string", packed(b'"a string"'), [], 0, "The object is not JSON")

    # Elements that are not JSON objects: skipped and counted with a WARNING, not an error.
    for odd in ((b"null", b"null"), (b'"a string"', b'"\xc3\xa9"', b'""'), (b"[1,[2]]", b"42", b"true")):
        batch = records.make(len(odd) + 1)
        doc = document(batch, odd=odd)
        label = f"non-object elements {[text.decode() for text in odd]}"
        planned.append(PlannedObject(label, packed(doc.data), batch, len(doc.elements), None, len(odd)))
    return planned


LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}
LINE_BREAKS.update({ord("\n"): "\\n", ord("\r"): "\\r"})


def excerpt(body: str) -> str:
    """The start of a body as the input shows it: 200 characters, every line break escaped (one log line)."""
    return body[:200].translate(LINE_BREAKS) + ("…" if len(body) > 200 else "")


def test_bad_bodies_and_damaged_objects_are_survived_explained_and_good_records_kept(moto, aws, splunkd, start_input):
    started = time.monotonic()
    bucket = aws.create_bucket()
    queue = aws.create_queue(max_receive_count=MAX_RECEIVE_COUNT)
    records = Records()
    objects = good_objects(records) + damaged_objects(records)
    assert len(objects) >= 40 and sum(1 for o in objects if o.problem or o.not_objects) >= 25
    announced: Dict[str, str] = {}  # source -> message id
    by_source: Dict[str, PlannedObject] = {}
    for planned in objects:
        info = aws.put_cloudtrail_object(bucket, planned.key, planned.data, gzip=False)
        announced[info.source] = aws.send_s3_event(queue, [info]).message_id
        by_source[info.source] = planned
    bodies = bad.integration_bad_bodies()
    sent = {aws.send_raw(queue, case.body).message_id: case for case in bodies}

    running = start_input(
        "bad_inputs",
        input_params(moto, queue, max_receive_count=MAX_RECEIVE_COUNT, max_decompressed_mb=MAX_DECOMPRESSED_MB),
    )
    running.wait_for_events(sum(len(o.good) for o in objects), timeout=60)
    # SQS moves a body to the DLQ on the receive after the last allowed one
    wait_for(lambda: aws.queue_counts(queue.dlq).visible == len(bodies), 100, "every bad body in the DLQ")
    wait_for(lambda: aws.queue_counts(queue) == QueueCounts(0, 0, 0), 20, "the queue to be empty")
    time.sleep(1.0)  # nothing more may come
    assert running.returncode is None, running.describe()  # alive after all of it
    assert running.terminate(timeout=30) == 0, running.describe()
    assert running.stream_complete and running.protocol_errors == [], running.describe()

    # events: every good record once, and for damaged objects exactly the records before the damage
    assert_exact_events(running.events, {source: planned.good for source, planned in by_source.items()})

    # progress: every object done, with the elements read before the damage
    progress = {(d["bucket"], d["object_key"]): d for d in splunkd.kv_documents(PROGRESS)}
    assert len(progress) == len(objects)
    for planned in objects:
        saved = progress[(bucket, planned.key)]
        assert saved["done"] is True and saved["records_done"] == planned.records_done, (planned.label, saved)

    # the dead-letter queue holds exactly the bad bodies, unchanged
    dead = {m["MessageId"]: m["Body"] for m in aws.drain(queue.dlq)}
    assert dead == {message_id: case.body for message_id, case in sent.items()}

    log = running.log_text()
    lines = log.split("\n")  # only LF ends a log line (a body excerpt may hold U+2028 or U+0085)
    assert "Traceback" not in log and "Traceback" not in running.stderr_text()
    assert "Unexpected error" not in log
    error_lines = [line for line in lines if "log_level=ERROR" in line]

    for message_id, case in sent.items():
        mine = [line for line in lines if message_id in line]
        [failed] = [line for line in mine if "log_level=WARNING" in line]
        [given_up] = [line for line in mine if "log_level=ERROR" in line]
        assert f"(receive 1 of {MAX_RECEIVE_COUNT}) failed: not a notification this input understands" in failed
        assert f"given up after {MAX_RECEIVE_COUNT} receives: not a notification" in given_up
        assert f"left for the dead-letter queue {queue.dlq.arn}" in given_up
        shown = excerpt(case.body).split("Signature")[0]  # SNS signatures are redacted
        for line in (failed, given_up):
            assert case.reason in line, (case.seed, case.reason, line[:400])
            assert f"Body starts with: {shown}" in line, (case.seed, line[:400])

    for source, planned in by_source.items():
        mine = [line for line in error_lines if f"{source} (message {announced[source]})" in line]
        if planned.problem is None:
            assert mine == [], (planned.label, mine)
        else:
            [line] = mine
            assert planned.problem in line, (planned.label, line)
            kept = f"{planned.records_done} record" + ("" if planned.records_done == 1 else "s")
            assert f"{kept} before the damage kept, the object is marked done" in line, line
        warnings = [line for line in lines if f"{planned.key}: " in line and "not JSON objects" in line]
        if planned.not_objects:
            [warning] = warnings
            skipped = f"{planned.not_objects} record" + ("" if planned.not_objects == 1 else "s")
            assert f"{skipped} not JSON objects, skipped" in warning, warning
        else:
            assert warnings == [], (planned.label, warnings)

    assert len(error_lines) == len(bodies) + sum(1 for o in objects if o.problem), "\n".join(error_lines)
    assert time.monotonic() - started < 120


def test_an_integer_too_long_for_int_is_a_damaged_object_not_an_unexpected_error(moto, aws, start_input):
    bucket = aws.create_bucket()
    queue = aws.create_queue(max_receive_count=MAX_RECEIVE_COUNT)
    batch = Records().make(3)
    doc = document(batch)
    data = packed(doc.data[: doc.starts()[2]] + b'{"n":' + b"7" * 5000 + b"}]}")
    info = aws.put_cloudtrail_object(bucket, cloudtrail_key(when=NOW, rng=RNG), data, gzip=False)
    aws.send_s3_event(queue, [info])
    running = start_input("long_integer", input_params(moto, queue, max_receive_count=MAX_RECEIVE_COUNT))
    try:
        running.wait_for_events(2, timeout=30)
        # a damaged object's message is deleted at once (it cannot get better by retrying)
        wait_for(lambda: aws.queue_counts(queue) == QueueCounts(0, 0, 0), 10, "the message to be deleted")
        log = running.log_text()
        assert "Traceback" not in log, log
        [line] = [line for line in log.split("\n") if "log_level=ERROR" in line]
        assert info.source in line and "2 records before the damage kept" in line, line
    finally:
        assert running.terminate(timeout=30) == 0
    assert_exact_events(running.events, {info.source: batch[:2]})
