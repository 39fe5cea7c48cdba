"""Section a/f of the benchmark, run by scripts/bench.py under each Python it finds (3.9, 3.11, 3.13).

Imports the BUILT add-on (output/TA_aws_cloudtrail/bin and lib), so it measures the code and libraries that
ship, on the interpreter given. Prints one JSON line: the pipeline and the naive path on the given objects,
each the best CPU time of 5 runs on one core.

    python scripts/bench_pipeline.py object1.json.gz object2.json.gz ...
"""

import gzip
import io
import json
import os
import re
import sys
import time

ADDON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "output", "TA_aws_cloudtrail")
sys.path[:0] = [os.path.join(ADDON, "lib"), os.path.join(ADDON, "bin")]

from splunklib.modularinput import Event, EventWriter  # noqa: E402

from ta_aws_cloudtrail.batches import event_batches  # noqa: E402
from ta_aws_cloudtrail.events import EventFormatter, EventSink, event_time  # noqa: E402
from ta_aws_cloudtrail.filters import RecordFilter  # noqa: E402
from ta_aws_cloudtrail.objects import iter_records  # noqa: E402

STANZA = "aws_cloudtrail_sqs://bench"
CHUNK = 1 << 20  # what the input reads from S3 per step


class Discard(io.TextIOBase):
    """stdout stand-in that keeps nothing (splunkd drains the input's pipe as fast)."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def chunks(data):
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def pipeline(objects):
    """What the input does with each object's bytes: decompress, split, filter, time, XML, write."""
    formatter = EventFormatter(STANZA, "main", None)
    sink = EventSink(EventWriter(output=Discard()))
    record_filter = RecordFilter(exclude_event_names=re.compile("^(Zz)"))  # evaluated on every record
    written = 0
    for number, data in enumerate(objects):
        object_events = formatter.for_object(f"s3://bench/object-{number}.json.gz", "aws:cloudtrail")
        for batch in event_batches(iter_records(chunks(data), 1 << 34), object_events, record_filter):
            sink.write(batch.events)
            written += len(batch.events)
    return written


def naive(objects):
    """The usual way: json.loads the file, json.dumps each record, splunklib Event + EventWriter."""
    writer = EventWriter(output=Discard())
    written = 0
    for number, data in enumerate(objects):
        for record in json.loads(gzip.decompress(data))["Records"]:
            writer.write_event(
                Event(
                    data=json.dumps(record, separators=(",", ":"), ensure_ascii=False),
                    stanza=STANZA,
                    time=event_time(record.get("eventTime")),
                    source=f"s3://bench/object-{number}.json.gz",
                    sourcetype="aws:cloudtrail",
                    index="main",
                )
            )
            written += 1
    return written


def best_cpu(function, objects, repeats=5):
    best = None
    for _ in range(repeats):
        started = time.process_time()
        events = function(objects)
        elapsed = time.process_time() - started
        best = elapsed if best is None else min(best, elapsed)
    return events, best


def main():
    objects = []
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            objects.append(f.read())
    megabytes = sum(len(gzip.decompress(d)) for d in objects) / 1e6
    events, cpu = best_cpu(pipeline, objects)
    naive_events, naive_cpu = best_cpu(naive, objects)
    print(
        json.dumps(
            {
                "python": ".".join(map(str, sys.version_info[:3])),
                "events": events,
                "cpu_s": cpu,
                "events_per_s": events / cpu,
                "mb_per_s": megabytes / cpu,
                "naive_events_per_s": naive_events / naive_cpu,
                "ratio": (events / cpu) / (naive_events / naive_cpu),
            }
        )
    )


if __name__ == "__main__":
    main()
