"""kill -9 fault injection: the built input is SIGKILLed again and again while it ingests 100,000 records, then a
last process finishes the job. Shared by tests/integration/test_crash_recovery.py and scripts/crash_test.py.

The set-up: ``objects`` CloudTrail log files holding ``records_per_object`` records on average (eventIDs
unique across objects through ``first_index``), announced into ONE queue with a dead-letter queue through
every notification shape (S3 event notifications sent directly, SNS wrapped and raw, CloudTrail's own SNS
notification naming several keys, EventBridge). S3 is reached through a FaultInjectingProxy that trickles
every GET, so that an object takes a few seconds to read and the kills land while objects are being read and
written. The input reads S3 in 1 MiB chunks: a gzip file of ~750 records (~130 KB) is written in one burst
once it has arrived, so a fifth of the files are stored as plain JSON (still named .json.gz: the input
detects gzip by its magic bytes) with twice the average number of records (~2.6 MB): those are written in
three steps seconds apart, the KV store holds them partly done when kills land, and restarts resume them
from the middle.

The accounting, per kill k (the input saves progress only after the events it covers are flushed, and a
restart resumes each object at the `records_done` saved in the KV store):

- U_k, "in flight at the kill": the records process k wrote for an object at or beyond that object's
  `records_done` saved in the KV store right after the kill (all of them if it was not saved at all, none if
  the object is `done`). These are the only records a later process may write again, so over the whole run
  duplicates (events seen - distinct records seen) <= sum(U_k). The two are equal when every such record is
  written again, which is what should happen.
- lost: distinct expected records never seen (must be 0).
- after every kill, no object's saved `records_done` may cover a record that no process has written yet
  (progress saved ahead of the output would lose those records).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from environment import input_params
from expectations import epoch_text, error_lines

from harness.aws import AwsTestEnv, MotoServer, ObjectInfo, QueueCounts, QueueInfo, cloudtrail_key
from harness.cloudtrail_data import make_records, record_index, record_json
from harness.modinput import ParsedEvent, RunningInput
from harness.proxies import FaultInjectingProxy, Rule
from harness.splunkd import SplunkdEmulator

PROGRESS_COLLECTION = "ta_aws_cloudtrail_progress"
INPUT_NAME = "crash_recovery"
SHAPES = ("s3", "sns", "sns_raw", "cloudtrail_sns", "eventbridge")
VISIBILITY_TIMEOUT = 30
# Share of the records the killed processes should write for the first time, so that kills are spread over
# the run and the last process still has work to do.
KILLED_SHARE = 0.6
# A kill by time instead of by event count lands anywhere: during start-up, while every worker waits for S3
# bytes, or in the middle of writing a batch.
TIME_KILL_RATE = 0.3

StartInput = Callable[[str, dict], RunningInput]
Log = Callable[[str], None]


@dataclass(frozen=True)
class TrailObject:
    """One uploaded log file and the records it holds (by global record index)."""

    info: ObjectInfo
    first_index: int
    count: int
    gzip: bool
    shape: str


@dataclass
class KillReport:
    """What one killed process did, and what the KV store held right after its death."""

    number: int
    trigger: str  # "after N events" ("?" appended: not reached in time, killed anyway) or "after S s"
    lifetime: float  # seconds from start to kill
    exit_code: Optional[int]  # -9 when the SIGKILL found the process alive
    events: int  # events parsed from its stdout (a half-written last event is not counted)
    in_flight: int  # U_k
    objects_written: int  # objects it wrote at least one event of
    objects_mid: int  # of those, objects not `done` in the KV store after the kill
    objects_partly_saved: List[str]  # objects (any) with 0 < records_done < count in the KV store after the kill
    protocol_errors: List[str]
    progress_ahead: List[str]  # saved progress covering records no process had written


@dataclass
class CrashResult:
    """The counts of one run of the scenario; `failures()` lists what breaks the guarantees."""

    objects: int
    expected_records: int
    kills: List[KillReport]
    total_events: int = 0
    distinct_records: int = 0
    lost: int = 0
    duplicates: int = 0
    unexpected_events: int = 0
    unexpected_examples: List[str] = field(default_factory=list)
    final_events: int = 0
    final_exit_code: Optional[int] = None
    final_stream_complete: bool = False
    final_protocol_errors: List[str] = field(default_factory=list)
    final_error_lines: List[str] = field(default_factory=list)
    killed_error_lines: List[str] = field(default_factory=list)
    final_seconds: float = 0.0
    queue_left: Optional[QueueCounts] = None
    dlq_messages: int = 0
    kv_problems: List[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    runtime_seconds: float = 0.0
    shape_counts: Dict[str, int] = field(default_factory=dict)
    objects_resumed_mid: int = 0  # objects partly saved at some kill: a later process resumed them mid-file
    messages_sent: int = 0

    @property
    def in_flight_total(self) -> int:
        """Sum of U_k: the bound on duplicates."""
        return sum(k.in_flight for k in self.kills)

    def in_flight_stats(self) -> Tuple[int, float, int]:
        values = [k.in_flight for k in self.kills] or [0]
        return min(values), statistics.median(values), max(values)

    def failures(self) -> List[str]:
        """Every broken guarantee, as one sentence each (empty: the run is good)."""
        problems: List[str] = []
        if self.kills and self.in_flight_total == 0:
            problems.append("no kill landed while records were in flight: recovery was not exercised")
        if self.kills and self.objects_resumed_mid == 0:
            problems.append("no kill found an object partly saved: resuming mid-file was not exercised")
        if self.lost:
            problems.append(f"{self.lost} records were never indexed")
        if self.duplicates > self.in_flight_total:
            problems.append(
                f"{self.duplicates} duplicates exceed the {self.in_flight_total} records in flight at the kills"
            )
        if self.unexpected_events:
            problems.append(f"{self.unexpected_events} events match no expected record: {self.unexpected_examples}")
        for kill in self.kills:
            if kill.exit_code != -9:
                problems.append(f"process {kill.number} was not alive at its kill (exit code {kill.exit_code})")
            if kill.protocol_errors:
                problems.append(f"process {kill.number} broke the stream protocol: {kill.protocol_errors}")
        ahead = [k for k in self.kills if k.progress_ahead]
        if ahead:
            first = ahead[0]
            problems.append(
                f"after {len(ahead)} kills saved progress was ahead of the output (records marked done that no "
                f"process had written); after kill {first.number}, {len(first.progress_ahead)} objects, e.g. "
                f"{first.progress_ahead[:2]}"
            )
        if self.final_exit_code != 0:
            problems.append(f"the last process exited {self.final_exit_code} after SIGTERM")
        if self.final_protocol_errors:
            problems.append(f"the last process broke the stream protocol: {self.final_protocol_errors}")
        if self.final_events and not self.final_stream_complete:
            problems.append("the last process did not close its stream after SIGTERM")
        if self.final_error_lines:
            problems.append(
                f"the last process logged {len(self.final_error_lines)} ERROR lines: {self.final_error_lines[:3]}"
            )
        if self.queue_left is None or self.queue_left.visible or self.queue_left.not_visible or self.queue_left.delayed:
            problems.append(f"messages left in the queue: {self.queue_left}")
        if self.dlq_messages:
            problems.append(f"{self.dlq_messages} messages were given up to the dead-letter queue")
        if self.kv_problems:
            problems.append(f"{len(self.kv_problems)} KV progress documents are wrong: {self.kv_problems[:3]}")
        return problems

    def summary(self) -> str:
        low, median, high = self.in_flight_stats()
        mid = sum(1 for k in self.kills if k.objects_mid)
        partly = sum(1 for k in self.kills if k.objects_partly_saved)
        queue_left = self.queue_left
        shapes = ", ".join(f"{shape} {n}" for shape, n in self.shape_counts.items())
        lines = [
            f"records expected       {self.expected_records:>9,} in {self.objects} objects, "
            f"{self.messages_sent} messages (objects by shape: {shapes})",
            f"kills (SIGKILL)        {len(self.kills):>9}   ({mid} with an object written but not done at the kill, "
            f"{partly} with the KV store holding a partly done object; {self.objects_resumed_mid} objects "
            "resumed mid-file)",
            f"events seen            {self.total_events:>9,}   ({self.final_events:,} by the last process)",
            f"distinct records seen  {self.distinct_records:>9,}",
            f"lost                   {self.lost:>9,}",
            f"duplicates             {self.duplicates:>9,}",
            f"in flight at kills     {self.in_flight_total:>9,}   (sum of U_k; duplicates "
            f"{_relation(self.duplicates, self.in_flight_total)} sum U_k)",
            f"U_k min/median/max     {low:,} / {median:,.1f} / {high:,}",
            f"unexpected events      {self.unexpected_events:>9,}",
            f"last process           exit {self.final_exit_code} after SIGTERM, {self.final_seconds:.1f} s, "
            f"ERROR lines {len(self.final_error_lines)}, stream complete {self.final_stream_complete}",
            f"queue at the end       visible {queue_left.visible if queue_left else '?'}, in flight "
            f"{queue_left.not_visible if queue_left else '?'}; dead-letter queue {self.dlq_messages}",
            f"KV documents wrong     {len(self.kv_problems):>9}",
            f"ERROR lines (killed)   {len(self.killed_error_lines):>9}",
            f"runtime                {self.runtime_seconds:>9.1f} s (set-up {self.setup_seconds:.1f} s)",
        ]
        return "\n".join(lines)

    def kill_table(self) -> str:
        columns = ("kill", 4), ("trigger", 18), ("alive s", 7), ("events", 7), ("U_k", 6), ("written", 7)
        header = " ".join(f"{name:>{width}}" for name, width in (*columns, ("mid", 4), ("partly", 6)))
        rows = [header]
        for k in self.kills:
            rows.append(
                f"{k.number:>4} {k.trigger:>18} {k.lifetime:>7.1f} {k.events:>7} {k.in_flight:>6} "
                f"{k.objects_written:>7} {k.objects_mid:>4} {len(k.objects_partly_saved):>6}"
            )
        return "\n".join(rows)


def _relation(a: int, b: int) -> str:
    return "==" if a == b else "<" if a < b else ">"


class _Ledger:
    """Every event seen over the run, checked against the expected records, by object and position."""

    def __init__(self, objects: Sequence[TrailObject], digests: Dict[int, bytes]) -> None:
        self._digests = digests
        self._object_of: Dict[int, TrailObject] = {}
        for obj in objects:
            for index in range(obj.first_index, obj.first_index + obj.count):
                self._object_of[index] = obj
        self.times_seen: Dict[int, int] = {}
        self.seen_positions: Dict[str, Set[int]] = {obj.info.key: set() for obj in objects}
        self.events = 0
        self.unexpected = 0
        self.unexpected_examples: List[str] = []

    def add(self, events: Sequence[ParsedEvent]) -> Dict[str, Set[int]]:
        """Count `events`; returns the positions (0-based, in file order) they hold, by object key."""
        written: Dict[str, Set[int]] = {}
        for event in events:
            self.events += 1
            obj, index, why = self._match(event)
            if obj is None:
                self.unexpected += 1
                if len(self.unexpected_examples) < 3:
                    self.unexpected_examples.append(f"{why}: {event.source} {event.data[:120]!r}")
                continue
            self.times_seen[index] = self.times_seen.get(index, 0) + 1
            position = index - obj.first_index
            written.setdefault(obj.info.key, set()).add(position)
            self.seen_positions[obj.info.key].add(position)
        return written

    def _match(self, event: ParsedEvent) -> Tuple[Optional[TrailObject], int, str]:
        try:
            record = json.loads(event.data)
            index = record_index(record["eventID"])
        except (ValueError, KeyError, TypeError):
            return None, -1, "not a generated record"
        obj = self._object_of.get(index)
        if obj is None:
            return None, index, f"record {index} was not uploaded"
        if event.source != obj.info.source:
            return None, index, f"record {index} under the wrong source"
        if _digest(event.data) != self._digests[index]:
            return None, index, f"record {index} altered"
        if event.sourcetype != "aws:cloudtrail" or event.index != "main" or not event.done:
            return None, index, f"record {index} with wrong metadata"
        if event.time != epoch_text(record["eventTime"]):
            return None, index, f"record {index} with _time {event.time}"
        return obj, index, ""

    def contiguous_seen(self, key: str) -> int:
        """How many records of the object, from its first, have been written at least once."""
        positions = self.seen_positions[key]
        n = 0
        while n in positions:
            n += 1
        return n

    @property
    def distinct(self) -> int:
        return len(self.times_seen)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _upload(
    aws: AwsTestEnv,
    bucket: str,
    rng: random.Random,
    objects: int,
    records_per_object: int,
    plain_share: float,
) -> Tuple[List[TrailObject], Dict[int, bytes]]:
    """Upload the log files; returns them and the digest of each record's compact JSON by record index."""
    start = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
    plain = set(rng.sample(range(objects), round(objects * plain_share)))
    counts = _record_counts(objects, records_per_object, plain)
    uploaded: List[TrailObject] = []
    digests: Dict[int, bytes] = {}
    first = 0
    for n in range(objects):
        moment = start + timedelta(minutes=5 * n)
        records = make_records(counts[n], seed=rng.randrange(1 << 30), first_index=first, start_time=moment)
        for i, record in enumerate(records):
            digests[first + i] = _digest(record_json(record))
        key = cloudtrail_key(when=moment, rng=rng)
        info = aws.put_cloudtrail_object(bucket, key, records, gzip=n not in plain)
        uploaded.append(TrailObject(info, first, counts[n], n not in plain, SHAPES[n % len(SHAPES)]))
        first += counts[n]
    return uploaded, digests


def _record_counts(objects: int, average: int, plain: Set[int]) -> List[int]:
    """Records per object: twice the average for plain JSON files, the rest shared by the gzip ones, so that the
    total is exactly objects * average."""
    if len(plain) * 2 >= objects:
        raise ValueError("plain_share must stay below 0.5")
    left = objects * average - len(plain) * 2 * average
    gzip_objects = objects - len(plain)
    counts = []
    for n in range(objects):
        if n in plain:
            counts.append(2 * average)
        else:
            share, left, gzip_objects = left // gzip_objects, left - left // gzip_objects, gzip_objects - 1
            counts.append(share)
    return counts


def _announce(aws: AwsTestEnv, queue: QueueInfo, bucket: str, uploaded: List[TrailObject], rng: random.Random) -> int:
    """Announce every object exactly once, in a shuffled mix of shapes; returns the number of messages sent."""
    wrapped = aws.create_topic()
    raw = aws.create_topic()
    aws.subscribe_queue(wrapped, queue)
    aws.subscribe_queue(raw, queue, raw=True)
    aws.route_eventbridge_to_queue(queue, bucket=bucket)
    sends: List[Callable[[], object]] = []
    by_shape: Dict[str, List[TrailObject]] = {s: [o for o in uploaded if o.shape == s] for s in SHAPES}
    for obj in by_shape["s3"]:
        sends.append(lambda o=obj: aws.send_s3_event(queue, [o.info]))
    for obj in by_shape["sns"]:
        sends.append(lambda o=obj: aws.publish_s3_event(wrapped, [o.info]))
    for obj in by_shape["sns_raw"]:
        sends.append(lambda o=obj: aws.publish_s3_event(raw, [o.info]))
    for obj in by_shape["eventbridge"]:
        sends.append(lambda o=obj: aws.send_eventbridge_object_created([o.info]))
    # CloudTrail names the files it delivered together, several per message; its topic may deliver raw too
    pending = list(by_shape["cloudtrail_sns"])
    while pending:
        size = min(len(pending), rng.randint(2, 4))
        group, pending = pending[:size], pending[size:]
        topic = wrapped if rng.random() < 0.5 else raw
        sends.append(lambda g=group, t=topic: aws.publish_cloudtrail_notification(t, bucket, [o.info.key for o in g]))
    rng.shuffle(sends)
    for send in sends:
        send()
    return len(sends)


def _slow_s3(moto: MotoServer, bucket: str, uploaded: Sequence[TrailObject], seconds: float) -> FaultInjectingProxy:
    """A proxy in front of moto that trickles each gzip object's GET over about `seconds`, and each plain JSON
    one (twice the records) over twice that: both kinds are in the middle of being read at the kills."""
    proxy = FaultInjectingProxy(moto.endpoint_url).start()
    plain_paths = {f"/{bucket}/{o.info.key}" for o in uploaded if not o.gzip}

    def rate(group: List[TrailObject], duration: float) -> int:
        return max(1, int(statistics.mean(o.info.size for o in group) / duration)) if group else 1

    if plain_paths:
        proxy.add_rule(
            Rule(
                match=lambda r: r.method == "GET" and r.path.split("?")[0] in plain_paths,
                bytes_per_second=rate([o for o in uploaded if not o.gzip], 2 * seconds),
            )
        )
    proxy.add_rule(
        Rule(
            match=lambda r: r.method == "GET" and r.path.startswith(f"/{bucket}/"),
            bytes_per_second=rate([o for o in uploaded if o.gzip], seconds),
        )
    )
    return proxy


def _is_done(doc: dict) -> bool:
    return doc.get("done") in (True, "true", "1", 1)


def _saved_progress(splunkd: SplunkdEmulator, bucket: str) -> Dict[str, dict]:
    """The KV progress documents of this run's objects, by object key (once a save sent before a kill has landed)."""
    splunkd.settle()
    try:
        docs = splunkd.kv_documents(PROGRESS_COLLECTION)
    except KeyError:  # the collection is created by the first process; it may have died before
        return {}
    return {d["object_key"]: d for d in docs if d.get("bucket") == bucket}


def _log_sizes(log_dir: str) -> Dict[str, int]:
    if not os.path.isdir(log_dir):
        return {}
    return {name: os.path.getsize(os.path.join(log_dir, name)) for name in os.listdir(log_dir) if name.endswith(".log")}


def _log_since(log_dir: str, sizes: Dict[str, int]) -> str:
    """What the log files gained since `sizes` was taken (a file that shrank was rotated: read it whole)."""
    parts = []
    for name, size in sorted(_log_sizes(log_dir).items()):
        offset = sizes.get(name, 0)
        with open(os.path.join(log_dir, name), "rb") as log_file:
            if size >= offset:
                log_file.seek(offset)
            parts.append(log_file.read().decode("utf-8", errors="replace"))
    return "".join(parts)


def _kill_report(
    number: int,
    trigger: str,
    lifetime: float,
    exit_code: Optional[int],
    running: RunningInput,
    written: Dict[str, Set[int]],
    saved: Dict[str, dict],
    by_key: Dict[str, TrailObject],
    ledger: _Ledger,
) -> KillReport:
    in_flight = 0
    mid = 0
    for key, positions in written.items():
        doc = saved.get(key)
        if doc is not None and _is_done(doc):
            continue
        resume_at = int(doc.get("records_done") or 0) if doc is not None else 0
        in_flight += sum(1 for p in positions if p >= resume_at)
        mid += 1
    partly = []
    ahead = []
    for key, doc in saved.items():
        obj = by_key.get(key)
        if obj is None:
            ahead.append(f"unknown object {key}")
            continue
        records_done = int(doc.get("records_done") or 0)
        if _is_done(doc) and records_done != obj.count:
            ahead.append(f"{key} done at {records_done} of {obj.count} records")
        if 0 < records_done < obj.count and not _is_done(doc):
            partly.append(key)
        written_prefix = ledger.contiguous_seen(key)
        if records_done > written_prefix:
            ahead.append(f"{key} saved at {records_done}, only its first {written_prefix} records were written")
    return KillReport(
        number=number,
        trigger=trigger,
        lifetime=lifetime,
        exit_code=exit_code,
        events=running.event_count,
        in_flight=in_flight,
        objects_written=len(written),
        objects_mid=mid,
        objects_partly_saved=partly,
        protocol_errors=running.protocol_errors,
        progress_ahead=ahead,
    )


def run_crash_scenario(
    moto: MotoServer,
    aws: AwsTestEnv,
    splunkd: SplunkdEmulator,
    start: StartInput,
    *,
    kills: int = 20,
    seed: int = 1,
    objects: int = 100,
    records_per_object: int = 1000,
    seconds_per_object: float = 3.0,
    plain_share: float = 0.2,
    final_timeout: float = 240.0,
    log: Log = print,
) -> CrashResult:
    """Run the scenario (module docstring) with `start(name, params)` starting the built input; returns the counts.

    Nothing is asserted here: `CrashResult.failures()` says what went wrong, callers decide.
    """
    began = time.monotonic()
    rng = random.Random(seed)
    bucket = aws.create_bucket()
    # A process killed while it holds a message has added one receive to it; leave room for one receive per
    # process, so that only a message that really fails reaches the dead-letter queue.
    max_receives = kills + 5
    queue = aws.create_queue(max_receive_count=max_receives, visibility_timeout=VISIBILITY_TIMEOUT)
    uploaded, digests = _upload(aws, bucket, rng, objects, records_per_object, plain_share)
    messages = _announce(aws, queue, bucket, uploaded, rng)
    by_key = {o.info.key: o for o in uploaded}
    total = len(digests)
    ledger = _Ledger(uploaded, digests)
    result = CrashResult(objects=len(uploaded), expected_records=total, kills=[], messages_sent=messages)
    result.shape_counts = {s: sum(1 for o in uploaded if o.shape == s) for s in SHAPES}
    proxy = _slow_s3(moto, bucket, uploaded, seconds_per_object)
    params = input_params(
        moto,
        queue,
        s3_endpoint_url=proxy.url,
        visibility_timeout=VISIBILITY_TIMEOUT,
        max_receive_count=max_receives,
    )
    result.setup_seconds = time.monotonic() - began
    log(
        f"{total:,} records in {len(uploaded)} objects ({sum(not o.gzip for o in uploaded)} plain JSON), "
        f"{messages} messages; set-up {result.setup_seconds:.1f} s; {kills} kills follow"
    )
    # mean events per killed process so that the killed processes write about KILLED_SHARE of the records
    budget = max(1, int(KILLED_SHARE * total / max(kills, 1)))
    log_dir = ""
    resumed_mid: Set[str] = set()
    try:
        for number in range(1, kills + 1):
            running = start(INPUT_NAME, params)
            log_dir = running.log_dir or log_dir
            started = time.monotonic()
            if rng.random() < TIME_KILL_RATE:
                delay = rng.uniform(0.5, 2 * seconds_per_object + 2)
                trigger = f"after {delay:.1f} s"
                with contextlib.suppress(subprocess.TimeoutExpired):  # still running, as it should be
                    running.process.wait(delay)
            else:
                # never ask for more than half of what is left, so the last process always has work to do
                target = max(1, min(rng.randint(1, 2 * budget), (total - ledger.distinct) // 2))
                trigger = f"after {target} events"
                try:
                    # a process may have to wait for messages hidden by the previous kills to come back
                    running.wait_for_events(target, timeout=2 * VISIBILITY_TIMEOUT)
                except TimeoutError:
                    trigger += "?"  # killed anyway; the exit code says whether it was still alive
            exit_code = running.kill()  # returns once stdout is read to its end
            lifetime = time.monotonic() - started
            saved = _saved_progress(splunkd, bucket)
            written = ledger.add(running.events)
            report = _kill_report(number, trigger, lifetime, exit_code, running, written, saved, by_key, ledger)
            result.kills.append(report)
            resumed_mid.update(report.objects_partly_saved)
            log(
                f"kill {number:>3}: {trigger:>18}, alive {lifetime:5.1f} s, {report.events:>6} events, "
                f"U_k {report.in_flight:>5}, objects written {report.objects_written:>2} "
                f"(not done {report.objects_mid}), distinct so far {ledger.distinct:,}/{total:,}"
            )

        result.killed_error_lines = error_lines(_log_since(log_dir, {})) if log_dir else []
        sizes = _log_sizes(log_dir) if log_dir else {}
        final = start(INPUT_NAME, params)
        log_dir = final.log_dir or log_dir
        final_started = time.monotonic()
        consumed = 0
        deadline = final_started + final_timeout
        while time.monotonic() < deadline and final.returncode is None:
            events = final.events
            ledger.add(events[consumed:])
            consumed = len(events)
            if ledger.distinct >= total:
                counts = aws.queue_counts(queue)
                # messages held by the last killed process come back after the visibility timeout, and the
                # last process deletes them (their objects are done): wait for that too
                if counts.visible == counts.not_visible == counts.delayed == 0:
                    break
            time.sleep(0.5)
        try:
            result.final_exit_code = final.terminate(timeout=30)
        except TimeoutError as exc:
            log(f"the last process ignored SIGTERM: {exc}")
            result.final_exit_code = final.returncode
        result.final_seconds = time.monotonic() - final_started
        ledger.add(final.events[consumed:])
        result.final_events = final.event_count
        result.final_stream_complete = final.stream_complete
        result.final_protocol_errors = final.protocol_errors
        result.final_error_lines = error_lines(_log_since(log_dir, sizes)) if log_dir else []
        if result.final_exit_code != 0 or result.final_error_lines:
            log(f"last process stderr: {final.stderr_text()[-2000:]}")
    finally:
        proxy.stop()

    result.total_events = ledger.events
    result.distinct_records = ledger.distinct
    result.lost = total - ledger.distinct
    result.duplicates = sum(n - 1 for n in ledger.times_seen.values())
    result.unexpected_events = ledger.unexpected
    result.unexpected_examples = ledger.unexpected_examples
    result.queue_left = aws.queue_counts(queue)
    assert queue.dlq is not None
    dlq = aws.queue_counts(queue.dlq)
    result.dlq_messages = dlq.visible + dlq.not_visible + dlq.delayed
    result.kv_problems = _final_progress_problems(_saved_progress(splunkd, bucket), uploaded)
    result.objects_resumed_mid = len(resumed_mid)
    result.runtime_seconds = time.monotonic() - began
    return result


def _final_progress_problems(saved: Dict[str, dict], uploaded: Sequence[TrailObject]) -> List[str]:
    """Every object must end `done` with all its records counted, under this input and its ETag."""
    problems = []
    for obj in uploaded:
        doc = saved.get(obj.info.key)
        if doc is None:
            problems.append(f"{obj.info.key}: no progress document")
            continue
        expected = (True, obj.count, obj.info.etag, INPUT_NAME)
        found = (_is_done(doc), int(doc.get("records_done") or 0), doc.get("version"), doc.get("input"))
        if found != expected:
            problems.append(f"{obj.info.key}: (done, records_done, version, input) = {found}, expected {expected}")
    extra = set(saved) - {o.info.key for o in uploaded}
    problems.extend(f"{key}: progress of an object that was never uploaded" for key in sorted(extra))
    return problems
