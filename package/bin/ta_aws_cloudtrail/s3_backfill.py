"""The S3 backfill: a trail's existing log files for a date range, each through the shared object path.

The main thread finds the trail's partitions (account, folder, region), then walks the range a day at a time,
listing that day's prefix of every partition a page at a time and handing the files to `max_in_flight` workers
(listing the next prefix overlaps with reading). A file is claimed and its progress kept like the SQS input's, so a
file ingested by either input is indexed once. Per partition, the last day whose files are all done is saved as a
cursor in the KV store: a restart resumes after it. At the end of the range one completion line is logged and the
completion saved, so later restarts of the input do nothing for that range.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Deque, Dict, List, Set

from botocore.exceptions import BotoCoreError, ClientError

from .aws import describe_aws_error, is_transient
from .checkpoints import ProgressLedger, progress_key
from .claims import ObjectClaims
from .cursors import Cursor, CursorStore
from .events import EventSink
from .kvstore import KvStoreError
from .logs import OutageLog, redact
from .metrics import InputMetrics
from .notifications import ObjectRef
from .object_ingest import Interrupted, ObjectFailed, ObjectIngester
from .settings import BackfillSettings
from .trail_listing import DIGESTS, FIREHOSE, INSIGHTS, LOGS, Partition, TrailLister, days

COMPLETE = "_complete"
SAVE_CURSORS_EVERY_SECONDS = 2.0
OBJECT_ATTEMPTS = 4
LIST_ATTEMPTS = 6
PREFETCH_CHUNK = 100


class BackfillFailed(Exception):
    """The backfill cannot go on (bucket missing, listing denied); the message says what to do."""


@dataclass(eq=False)
class _Day:
    """The files of one partition on one day, while they are being read."""

    partition: Partition
    day: date
    listed: bool = False
    pending: int = 0
    failed: int = 0

    @property
    def finished(self) -> bool:
        return self.listed and self.pending == 0


class CloudTrailS3Backfill:
    def __init__(
        self,
        settings: BackfillSettings,
        s3,
        ledger: ProgressLedger,
        claims: ObjectClaims,
        cursors: CursorStore,
        sink: EventSink,
        metrics: InputMetrics,
        logger: logging.Logger,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self._ledger = ledger
        self._cursors = cursors
        self._metrics = metrics
        self._log = logger
        self._stop = stop
        self._outages = OutageLog(logger)
        self._objects = ObjectIngester(settings, s3, ledger, claims, sink, metrics, logger, self._outages, stop)
        self._s3 = s3
        self._lister = TrailLister(s3, settings.bucket, settings.key_prefix, list_page=self._list_page)
        self._blocked: Set[str] = set()  # partitions with a failed day: their cursor stays before it
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(2 * settings.max_in_flight)
        self._open: Dict[str, Deque[_Day]] = {}  # partition name -> its days being read, oldest first
        self._done_through: Dict[str, date] = {}  # partition name -> last day all of whose files are done
        self._dirty: Dict[str, date] = {}
        self._last_save = 0.0
        self._list_calls = 0
        self._days_total = 0
        self._days_done = 0
        self._objects_done = 0
        self._started = time.monotonic()

    # --- metrics ---

    def progress_fields(self) -> Dict[str, object]:
        """The backfill's own fields of the metrics line."""
        with self._lock:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            fields: Dict[str, object] = {
                "days_done": self._days_done,
                "days_total": self._days_total,
                "list_calls": self._list_calls,
                "objects_per_s": f"{self._objects_done / elapsed:.1f}",
            }
            if 0 < self._days_done < self._days_total:
                fields["eta_s"] = f"{elapsed / self._days_done * (self._days_total - self._days_done):.0f}"
        return fields

    # --- the walk ---

    def run(self) -> str:
        """Walk the range; returns "complete", "incomplete" (some files failed), "stopped" or "already complete"."""
        settings = self.settings
        saved = self._load_cursors()
        if COMPLETE in saved:
            self._log.info(
                "Backfill of s3://%s/%s from %s to %s already complete (%s): nothing to do",
                settings.bucket,
                settings.key_prefix,
                settings.start_date,
                settings.end_date or "today",
                saved[COMPLETE],
            )
            return "already complete"
        last_day = settings.last_day()
        folders = [LOGS, INSIGHTS, FIREHOSE] + ([DIGESTS] if settings.ingest_digest_files else [])
        partitions = self._lister.partitions(settings.account_ids, settings.regions, folders)
        if not partitions:
            self._log.warning(
                "No CloudTrail folders under s3://%s/%sAWSLogs/ for accounts %s and regions %s, and no Firehose "
                "year folders under s3://%s/%s: nothing to backfill",
                settings.bucket,
                settings.key_prefix,
                ",".join(sorted(settings.account_ids)) or "any",
                ",".join(sorted(settings.regions)) or "any",
                settings.bucket,
                settings.key_prefix,
            )
        before_start = settings.start_date - timedelta(days=1)
        for partition in partitions:
            resume = saved.get(partition.name)
            self._done_through[partition.name] = date.fromisoformat(resume) if resume else before_start
            self._open[partition.name] = deque()
            self._days_total += max(0, (last_day - self._done_through[partition.name]).days)
        self._log.info(
            "Backfill of s3://%s/%sAWSLogs/ from %s to %s: %d partitions (account/folder/region), %d days to read",
            settings.bucket,
            settings.key_prefix,
            settings.start_date,
            last_day,
            len(partitions),
            self._days_total,
        )

        from concurrent.futures import ThreadPoolExecutor

        try:
            with ThreadPoolExecutor(max_workers=settings.max_in_flight, thread_name_prefix="object") as executor:
                for day in days(settings.start_date, last_day):
                    for partition in partitions:
                        if self._stop.is_set():
                            break
                        if day > self._done_through[partition.name]:
                            self._read_day(executor, partition, day)
        finally:
            self._save_cursors(force=True)  # what is done stays done, whatever stopped the walk
        return self._finish(last_day)

    def _read_day(self, executor, partition: Partition, day: date) -> None:
        state = _Day(partition, day)
        with self._lock:
            self._open[partition.name].append(state)
        try:
            for page in self._lister.day_pages(partition, day, self._skip_other):
                self._prefetch(page)
                for ref in page:
                    while not self._slots.acquire(timeout=0.5):
                        if self._stop.is_set():
                            state.failed += 1
                            return
                    with self._lock:
                        state.pending += 1
                    executor.submit(self._ingest, state, ref)
        except BackfillFailed:
            # listing is denied or keeps failing: stop the walk (one ERROR from the helper), not a line per day
            state.failed += 1
            raise
        finally:
            state.listed = True
            self._close_finished(partition.name)

    def _skip_other(self, key: str) -> None:
        self._metrics.add(objects_skipped_other=1)
        self._log.info("Skipped s3://%s/%s: not a CloudTrail log file", self.settings.bucket, key)

    def _prefetch(self, page: List[ObjectRef]) -> None:
        # one KV query per chunk: files ingested already (by the SQS input, or before a restart) cost no GetObject
        for start in range(0, len(page), PREFETCH_CHUNK):
            self._ledger.prefetch([progress_key(ref.bucket, ref.key) for ref in page[start : start + PREFETCH_CHUNK]])

    def _ingest(self, state: _Day, ref: ObjectRef) -> None:
        context = f"backfill of {state.partition.name} on {state.day:%Y-%m-%d}"
        try:
            for attempt in range(1, OBJECT_ATTEMPTS + 1):
                try:
                    self._objects.ingest(ref, context)
                    break
                except ObjectFailed as failure:
                    if failure.kind == "s3_NoSuchKey":
                        self._metrics.add(objects_missing=1)
                        self._log.warning("%s (%s); skipped", failure.reason, context)
                        break
                    if not failure.retryable or attempt == OBJECT_ATTEMPTS or self._stop.is_set():
                        self._metrics.error(failure.kind)
                        self._log.error(
                            "%s (%s, attempt %d); the day stays to be done: a restart of the input tries it again",
                            failure.reason,
                            context,
                            attempt,
                        )
                        state.failed += 1
                        break
                    self._outages.failure(failure.kind, f"{failure.reason} ({context}); trying again")
                    if self._stop.wait(2.0**attempt):
                        state.failed += 1
                        break
        except Interrupted:
            state.failed += 1
        except Exception as exc:  # a bug must not stop the backfill; the day is tried again at the next start
            self._log.exception("Unexpected error on %s (%s): %s", ref.source, context, redact(exc))
            state.failed += 1
        finally:
            with self._lock:
                state.pending -= 1
                self._objects_done += 1
            self._slots.release()
            self._close_finished(state.partition.name)

    def _close_finished(self, partition_name: str) -> None:
        """Advance the partition's cursor over its oldest days whose files are all done."""
        with self._lock:
            open_days = self._open[partition_name]
            while open_days and open_days[0].finished:
                state = open_days.popleft()
                self._days_done += 1
                if state.failed:
                    # the cursor stays before a failed day; the days after it are read, and skipped as done when
                    # a restart reads them again
                    self._blocked.add(partition_name)
                if partition_name in self._blocked:
                    continue
                self._done_through[partition_name] = state.day
                self._dirty[partition_name] = state.day
        self._save_cursors()

    # --- cursors ---

    def _load_cursors(self) -> Dict[str, str]:
        try:
            return self._cursors.load(self.settings.name, self.settings.range_id)
        except KvStoreError as exc:
            self._log.warning(
                "Cannot read the backfill's cursors (%s): starting from %s; files already ingested are skipped "
                "through their progress when the KV store answers",
                exc,
                self.settings.start_date,
            )
            return {}

    def _save_cursors(self, force: bool = False) -> None:
        with self._lock:
            if not self._dirty or (not force and time.monotonic() - self._last_save < SAVE_CURSORS_EVERY_SECONDS):
                return
            dirty, self._dirty = self._dirty, {}
            self._last_save = time.monotonic()
        range_id = self.settings.range_id
        try:
            self._cursors.save([Cursor(self.settings.name, n, range_id, d.isoformat()) for n, d in dirty.items()])
            self._outages.recovered("kv_cursors")
        except KvStoreError as exc:
            with self._lock:
                for name, day in dirty.items():
                    self._dirty.setdefault(name, day)
            self._outages.failure("kv_cursors", f"Cannot save the backfill's cursors ({exc}); will try again")

    def _finish(self, last_day: date) -> str:
        settings = self.settings
        failed = [name for name, through in self._done_through.items() if through < last_day]
        elapsed = time.monotonic() - self._started
        totals = self._metrics.totals()
        summary = (
            f"objects={totals.get('objects_ingested', 0)} objects_skipped_done={totals.get('objects_skipped_done', 0)} "
            f"records={totals.get('records_written', 0)} list_calls={self._list_calls} duration_s={elapsed:.0f}"
        )
        if self._stop.is_set():
            self._log.info("Backfill stopped; it resumes from its cursors at the next start (%s)", summary)
            return "stopped"
        if failed:
            self._log.error(
                "Backfill from %s to %s incomplete: %d of %d partitions have days with files that failed (see "
                "the ERROR lines above), e.g. %s; a restart of the input (disable and enable it) tries those days "
                "again. %s",
                settings.start_date,
                last_day,
                len(failed),
                len(self._done_through),
                failed[0],
                summary,
            )
            return "incomplete"
        completed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        completion = json.dumps({"completed": completed, "through": str(last_day)})
        try:
            self._cursors.save([Cursor(settings.name, COMPLETE, settings.range_id, completion)])
        except KvStoreError as exc:
            self._log.warning("Cannot save the backfill's completion (%s): the next start lists the range again", exc)
        self._log.info(
            "Backfill complete: s3://%s/%sAWSLogs/ from %s to %s, %d partitions, %s; later starts of this input do "
            "nothing for this range",
            settings.bucket,
            settings.key_prefix,
            settings.start_date,
            last_day,
            len(self._done_through),
            summary,
        )
        return "complete"

    # --- AWS errors ---

    def _list_page(self, params: dict) -> dict:
        """One ListObjectsV2 call; transient errors are retried with growing waits, others raise BackfillFailed."""
        resource = f"s3://{params['Bucket']}/{params.get('Prefix', '')}"
        delay = 2.0
        for attempt in range(1, LIST_ATTEMPTS + 1):
            with self._lock:
                self._list_calls += 1
            try:
                page = self._s3.list_objects_v2(**params)
                self._outages.recovered("s3_list")
                return page
            except (ClientError, BotoCoreError) as exc:
                reason, _ = describe_aws_error(exc, "listing", resource)
                if not is_transient(exc) or attempt == LIST_ATTEMPTS:
                    raise BackfillFailed(reason) from None
                self._outages.failure("s3_list", f"{reason}; trying again in {delay:.0f} s")
                if self._stop.wait(delay):
                    raise BackfillFailed(f"{reason} (stopped while waiting)") from None
                delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable")
