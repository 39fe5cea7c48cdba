"""More than 10,000 generated bad inputs through exactly the functions the input calls.

- Message bodies -> ``parse_message_body``: only a Notification or a NotificationError may come out, and the
  error is one short line that never repeats more than a quoted field's worth of the body.
- Objects -> ``iter_records`` -> ``event_batches`` with a real ``EventFormatter``: only ObjectFormatError (or
  ObjectTooLargeError) may come out, after exactly the records that were complete before the damage; every
  event is well-formed XML whose data is the record.

Every case is ``(family, seed)`` (see ``harness/bad_inputs.py``) and runs under a watchdog; a failure names
its case. Replay one with ``BAD_INPUT_CASE=<bodies|objects|chunkings>:<family>:<seed> pytest -s <this file>``.
Run with ``-s`` to see the figures per family.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import time
import tracemalloc
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import pytest

from harness import bad_inputs as bad
from ta_aws_cloudtrail.batches import EventBatch, event_batches
from ta_aws_cloudtrail.events import EventFormatter
from ta_aws_cloudtrail.notifications import Notification, NotificationError, ObjectRef, parse_message_body
from ta_aws_cloudtrail.objects import ObjectFormatError, ObjectTooLargeError, iter_records, read_document

BODY_PLAN: Dict[str, int] = {
    "wrong_types": bad.wrong_type_case_count(),  # every field of every shape, every kind of wrong value
    "random_json": 1200,
    "huge": 24,
    "deep": 24,
    "invalid_unicode": 600,
    "sns_message": 500,
    "control_chars": 500,
    "non_ascii_keys": 400,
    "truncated": 500,
    "mutated": 500,
}
OBJECT_PLAN: Dict[str, int] = {
    "intact": 400,
    "truncated_json": 800,
    "damaged_json": 600,
    "records_not_list": 120,
    "odd_elements": 300,
    "empty": 40,
    "not_json": 200,
    "corrupt_gzip": 700,
    "truncated_gzip": 600,
    "multi_member": 300,
    "bomb": 24,
    "cap_boundary": 150,
    "large_records": 60,
}
CHUNKING_CASES = 200
CASE_SECONDS = 2.0  # a case slower than this counts as a hang
WATCHDOG_SECONDS = 30.0  # a case still running then is interrupted (a hang that would never end)
MAX_ERROR_CHARS = 500
MAX_BODY_ECHO = 62  # a quoted field: 60 characters and its quotes
STANZA = "aws_cloudtrail_sqs://bad_inputs"
SOURCETYPE = "aws:cloudtrail"
FORMATTER = EventFormatter(STANZA, "main", "fuzz-host")
SHAPES = {"s3", "sns", "cloudtrail_sns", "eventbridge", "s3_test_event", "sns_control"}
REPLAY = os.environ.get("BAD_INPUT_CASE", "")


@dataclass
class FamilyStats:
    cases: int = 0
    crashes: int = 0
    hangs: int = 0
    wrong: int = 0
    records_kept: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    failures: List[str] = field(default_factory=list)


STATS: Dict[str, FamilyStats] = {}


class CaseHung(BaseException):
    """Raised by the watchdog; a BaseException so that no `except Exception` in the code under test eats it."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise CaseHung()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Crash(Exception):
    """A foreign exception came out of the code under test."""


def seeds(kind: str, family: str, count: int) -> Iterable[int]:
    """All seeds of the family, or only the one named by $BAD_INPUT_CASE (other families are skipped)."""
    if not REPLAY:
        return range(count)
    replay_kind, replay_family, replay_seed = REPLAY.split(":")
    if (replay_kind, replay_family) != (kind, family):
        pytest.skip(f"BAD_INPUT_CASE={REPLAY} replays another family")
    return [int(replay_seed)]


def run_cases(kind: str, family: str, count: int, check: Any) -> FamilyStats:
    """Run ``check(seed) -> records kept`` for each seed; count crashes, hangs and wrong outcomes."""
    chosen = seeds(kind, family, count)
    stats = STATS.setdefault(f"{kind}/{family}", FamilyStats())
    for seed in chosen:
        started = time.perf_counter()
        name = f"{kind}:{family}:{seed}"
        hung = False
        try:
            with watchdog(WATCHDOG_SECONDS):
                stats.records_kept += check(seed)
        except CaseHung:
            hung = True
            stats.hangs += 1
            stats.failures.append(f"{name}: still running after {WATCHDOG_SECONDS} s")
        except Crash as crash:
            stats.crashes += 1
            stats.failures.append(f"{name}: crash: {crash}")
        except AssertionError as wrong:
            stats.wrong += 1
            stats.failures.append(f"{name}: wrong outcome: {str(wrong)[:400]}")
        elapsed = time.perf_counter() - started
        if elapsed > CASE_SECONDS and not hung:
            stats.hangs += 1
            stats.failures.append(f"{name}: took {elapsed:.2f} s (bound {CASE_SECONDS} s)")
        stats.cases += 1
        stats.seconds += elapsed
        stats.slowest = max(stats.slowest, elapsed)
    return stats


def assert_family_passed(stats: FamilyStats, planned: int) -> None:
    assert not stats.failures, f"{len(stats.failures)} failing case(s), e.g.:\n" + "\n".join(stats.failures[:10])
    assert stats.cases == (1 if REPLAY else planned)


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    """Print the figures per family once the module's tests have run (visible with -s)."""
    yield
    if not STATS:
        return
    print("\n\nbad inputs: family, cases, crashes, hangs (> 2 s), wrong outcomes, records kept, seconds, slowest")
    for name, stats in STATS.items():
        print(
            f"  {name:30} {stats.cases:6} {stats.crashes:3} {stats.hangs:3} {stats.wrong:3} "
            f"{stats.records_kept:7} {stats.seconds:7.2f} {stats.slowest:6.3f}"
        )
    total = FamilyStats()
    for stats in STATS.values():
        total.cases += stats.cases
        total.crashes += stats.crashes
        total.hangs += stats.hangs
        total.wrong += stats.wrong
        total.records_kept += stats.records_kept
        total.seconds += stats.seconds
        total.slowest = max(total.slowest, stats.slowest)
    print(
        f"  {'TOTAL':30} {total.cases:6} {total.crashes:3} {total.hangs:3} {total.wrong:3} "
        f"{total.records_kept:7} {total.seconds:7.2f} {total.slowest:6.3f}"
    )


def test_the_plan_runs_at_least_10000_cases() -> None:
    planned = sum(BODY_PLAN.values()) + sum(OBJECT_PLAN.values()) + CHUNKING_CASES
    assert planned >= 10_000, planned


# --- message bodies ------------------------------------------------------------------------------------------


def longest_echo_is_short(message: str, body: str) -> bool:
    """Whether no run of more than MAX_BODY_ECHO characters of the message occurs in the body."""
    width = MAX_BODY_ECHO + 1
    return all(message[i : i + width] not in body for i in range(len(message) - width + 1))


def check_rejection(message: str, case: bad.BodyCase) -> None:
    assert len(message.splitlines()) == 1 and "\n" not in message and "\r" not in message, repr(message[:200])
    assert len(message) <= MAX_ERROR_CHARS, f"{len(message)} characters: {message[:200]!r}"
    assert message.endswith("."), repr(message[-80:])
    assert longest_echo_is_short(message, case.body), f"repeats the body: {message[:200]!r}"
    if case.reason is not None:
        assert case.reason in message, f"{case.reason!r} not in {message!r}"


def check_notification(result: Any, case: bad.BodyCase) -> None:
    assert case.reason is None, f"accepted; expected a rejection with {case.reason!r}"
    assert isinstance(result, Notification), type(result)
    assert result.shape in SHAPES, result.shape
    assert type(result.skipped_records) is int and result.skipped_records >= 0
    assert result.sns_envelope is None or isinstance(result.sns_envelope, dict)
    assert len(set(result.objects)) == len(result.objects)
    for ref in result.objects:
        assert isinstance(ref, ObjectRef)
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,255}", ref.bucket), ref.bucket[:80]
        assert isinstance(ref.key, str) and ref.key and isinstance(ref.key_as_sent, str) and ref.key_as_sent
        ref.key.encode("utf-8")  # a key that S3 could hold (no lone surrogate)
        assert ref.size is None or (type(ref.size) is int and ref.size >= 0)


def check_body(case: bad.BodyCase) -> int:
    try:
        result = parse_message_body(case.body)
    except NotificationError as error:
        check_rejection(str(error), case)
        return 0
    except Exception as error:
        raise Crash(f"{type(error).__name__}: {str(error)[:200]}") from error
    check_notification(result, case)
    return 0


@pytest.mark.parametrize("family", list(BODY_PLAN))
def test_bad_message_bodies(family: str) -> None:
    stats = run_cases("bodies", family, BODY_PLAN[family], lambda seed: check_body(bad.body_case(family, seed)))
    assert_family_passed(stats, BODY_PLAN[family])


def test_the_integration_test_bodies_are_rejected_with_their_reason() -> None:
    """The bodies the integration test sends are rejected for the reason it looks for in the log, and SQS can
    carry them."""
    cases = bad.integration_bad_bodies()
    assert len(cases) >= 40
    sqs_characters = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
    for case in cases:
        assert sqs_characters.fullmatch(case.body) and len(case.body.encode("utf-8")) < (1 << 20), case.seed
        with pytest.raises(NotificationError) as caught:
            parse_message_body(case.body)
        check_rejection(str(caught.value), case)


# --- objects -------------------------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def expected_epoch(event_time: Any) -> Optional[str]:
    """eventTime in CloudTrail's format -> epoch seconds with 3 decimals, with datetime (not the add-on)."""
    if not (isinstance(event_time, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", event_time)):
        return None
    moment = datetime.fromisoformat(event_time[:-1]).replace(tzinfo=timezone.utc)
    return f"{moment.timestamp():.3f}"


@dataclass
class ObjectRun:
    yielded: List[Tuple[str, Any]]
    batches: List[EventBatch]
    error: Optional[BaseException]


def read_object(data: bytes, chunks: List[bytes], cap: int, source: str) -> ObjectRun:
    """What the input does with an object's body: iter_records -> event_batches, to the end or the error."""
    assert b"".join(chunks) == data
    yielded: List[Tuple[str, Any]] = []

    def recorded(records: Iterable[Tuple[str, Any]]) -> Iterator[Tuple[str, Any]]:
        for item in records:
            yielded.append(item)
            yield item

    batches: List[EventBatch] = []
    error: Optional[BaseException] = None
    try:
        for batch in event_batches(recorded(iter_records(iter(chunks), cap)), FORMATTER.for_object(source, SOURCETYPE)):
            batches.append(batch)
    except ObjectFormatError as format_error:
        error = format_error
    except Exception as foreign:
        raise Crash(f"{type(foreign).__name__}: {str(foreign)[:200]}") from foreign
    return ObjectRun(yielded, batches, error)


def check_event(event: str, record: Any, source: str) -> None:
    """A complete <event> of the modular-input stream whose data is the record."""
    assert event.startswith("<event ") and event.endswith("</event>") and event.count("<event") == 1
    root = ET.fromstring(event)
    assert root.tag == "event" and root.get("stanza") == STANZA and root.get("unbroken") == "1"
    tags = [child.tag for child in root]
    assert tags in (
        ["time", "source", "sourcetype", "index", "host", "data", "done"],
        ["source", "sourcetype", "index", "host", "data", "done"],
    ), tags
    assert root.findtext("source") == bad.xml_safe(source)
    assert root.findtext("sourcetype") == SOURCETYPE and root.findtext("index") == "main"
    data = root.findtext("data") or ""
    assert "\n" not in data and "\r" not in data and not data.startswith(" ")
    assert canonical(json.loads(data)) == canonical(record), f"data {data[:120]!r}"
    epoch = expected_epoch(record.get("eventTime"))
    if epoch is not None:
        assert root.findtext("time") == epoch, (root.findtext("time"), record.get("eventTime"))
    elif not isinstance(record.get("eventTime"), str):
        assert "time" not in tags


def check_object_run(case: bad.ObjectCase, run: ObjectRun, source: str) -> int:
    """Assert the outcome; returns how many of the case's good records became events."""
    error = run.error
    if case.error is None:
        assert error is None, f"unexpected {type(error).__name__}: {error}"
    else:
        wanted = ObjectTooLargeError if case.error == "too_large" else ObjectFormatError
        assert error is not None, f"no error; expected {wanted.__name__} ({case.phrase})"
        assert type(error) is wanted, f"{type(error).__name__}: {error}; expected {wanted.__name__}"
        message = str(error)
        assert len(message.splitlines()) == 1 and len(message) <= 300 and message.endswith("."), repr(message)
        assert case.phrase in message, f"{case.phrase!r} not in {message!r}"
        assert error.records_read == len(run.yielded), (error.records_read, len(run.yielded))
    count = len(run.yielded)
    if case.garbled:
        assert count >= case.complete, f"{count} records yielded, {case.complete} were complete before the damage"
    else:
        assert count == case.complete, f"{count} records yielded, expected exactly {case.complete}"
    for number in range(case.complete):
        text, value = run.yielded[number]
        expected = canonical(case.elements[number].value)
        assert canonical(value) == expected, f"record {number + 1} differs"
        assert canonical(json.loads(text, strict=False)) == expected, f"record {number + 1}: text differs"
    # the batches: what the input writes, and the progress it reports
    assert run.batches, "no batch at all"
    assert run.batches[-1].records_done == count
    events = [event for batch in run.batches for event in batch.events]
    records = [value for _, value in run.yielded if type(value) is dict]
    assert len(events) == len(records), (len(events), len(records))
    assert sum(batch.counts["records_invalid"] for batch in run.batches) == count - len(records)
    for event, record in zip(events, records):
        check_event(event, record, source)
    return sum(1 for element in case.elements[: case.complete] if element.is_record)


def check_object(case: bad.ObjectCase) -> int:
    rng = random.Random(f"chunks:{case.family}:{case.seed}")
    source = bad.hostile_source(rng)
    run = read_object(case.data, bad.chunked(rng, case.data), case.cap, source)
    return check_object_run(case, run, source)


@pytest.mark.parametrize("family", list(OBJECT_PLAN))
def test_bad_objects(family: str) -> None:
    stats = run_cases("objects", family, OBJECT_PLAN[family], lambda seed: check_object(bad.object_case(family, seed)))
    assert_family_passed(stats, OBJECT_PLAN[family])


def check_chunking_invariance(seed: int) -> int:
    """The same bytes in four different chunkings: the same records, the same error, the same message."""
    rng = random.Random(f"chunking:{seed}")
    family = rng.choice([name for name in OBJECT_PLAN if name != "bomb"])
    case = bad.object_case(family, seed + 1_000_000)
    source = bad.hostile_source(rng)
    runs = [read_object(case.data, bad.chunked(rng, case.data), case.cap, source) for _ in range(3)]
    # one byte at a time for the first 3,000 bytes (the header, the first records), then the rest
    one_byte = [case.data[i : i + 1] for i in range(min(len(case.data), 3000))]
    runs.append(read_object(case.data, [*one_byte, case.data[3000:]], case.cap, source))
    first = runs[0]
    for other in runs[1:]:
        assert [text for text, _ in other.yielded] == [text for text, _ in first.yielded]
        assert type(other.error) is type(first.error) and str(other.error) == str(first.error)
    return check_object_run(case, first, source)


def test_chunking_does_not_change_the_outcome() -> None:
    stats = run_cases("chunkings", "mixed", CHUNKING_CASES, check_chunking_invariance)
    assert_family_passed(stats, CHUNKING_CASES)


def test_a_decompression_bomb_stops_at_the_cap_in_little_memory_and_time() -> None:
    """64 MiB of spaces in ~64 KiB of gzip after 3 records, with a 1 MiB cap: ObjectTooLargeError after the 3
    records, a few MiB of memory, well under a second."""
    records = [bad.record_element(random.Random(n), hostile=False) for n in range(3)]
    head = bad.build_document(records).data[:-2] + b","
    data = bad.gzip_member(head) + bad.gzip_bomb(b" ", bad.BOMB_BYTES)
    assert len(data) < bad.BOMB_BYTES // 500
    tracemalloc.start()
    started = time.perf_counter()
    try:
        run = read_object(data, bad.chunked(random.Random(1), data), 1 << 20, "s3://b/bomb.json.gz")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert type(run.error) is ObjectTooLargeError and run.error.records_read == 3
    assert "larger than the maximum of 1048576 bytes once decompressed" in str(run.error)
    assert [value for _, value in run.yielded] == [element.value for element in records]
    assert peak < 8 << 20, f"peak {peak} bytes"
    assert elapsed < CASE_SECONDS, elapsed


# --- bugs these generators found in the add-on (fixed): integers too long for int(), numbers beyond float ---

LONG_INTEGER = b"7" * 5000  # int() refuses more than 4,300 digits (Python >= 3.9.14/3.10.7/3.11)


@pytest.mark.parametrize(
    ("document", "complete"),
    [
        (b'{"Records":[{"a":1},{"n":' + LONG_INTEGER + b"}]}", 1),
        (b'{"Records":[{"a":1},' + LONG_INTEGER + b"]}", 1),
        (b'{"x":' + LONG_INTEGER + b',"Records":[{"a":1}]}', 0),
    ],
    ids=["in_a_record", "as_an_element", "before_records"],
)
def test_an_integer_too_long_for_int_is_a_format_error(document: bytes, complete: int) -> None:
    elements = bad.build_document([bad.element(b'{"a":1}')]).elements
    case = bad.ObjectCase("long_integer", 0, document, elements, complete, "format", "", bad.NO_CAP)
    check_object_run(case, read_object(document, [document], bad.NO_CAP, "s3://b/k"), "s3://b/k")


def test_a_digest_with_an_integer_too_long_for_int_is_a_format_error() -> None:
    with pytest.raises(ObjectFormatError):
        read_document([b'{"n":' + LONG_INTEGER + b"}"], bad.NO_CAP)


def test_a_number_beyond_float_range_stays_json_in_the_event_data() -> None:
    # Spaced JSON is re-serialised by events.py; json.dumps writes float('inf') as the non-JSON word Infinity.
    document = b'{"Records": [{"eventTime": "2021-01-01T00:00:00Z", "big": 1e400}]}'
    run = read_object(document, [document], bad.NO_CAP, "s3://b/k")
    [event] = run.batches[-1].events
    data = ET.fromstring(event).findtext("data") or ""

    def reject(constant: str) -> Any:
        raise AssertionError(f"{constant} in the event data {data!r}")

    json.loads(data, parse_constant=reject)
