"""The Event history input's loop: CloudTrail LookupEvents for each region of an account, with a durable cursor.

Every ``interval`` each stream (region, and category when Insights are included) reads the window
``[cursor - delay, now]`` (on the first run ``[now - start_days, now]``), in chunks of at most ``CHUNK_SECONDS``
oldest first. LookupEvents pages newest first, so a chunk's cursor moves only once its last page is read; a chunk
cut short (stop, error, expired NextToken) is read again from its start. The eventIDs written in a chunk are saved
after each page: what a later window meets again (the overlap that catches late events, or a chunk read again) is
skipped. Calls keep to 2 per second per region (one limiter per region, shared by the threads), and a throttling
answer backs off with one WARNING per episode.

After a SIGKILL, the events of the one page being written when it came (at most 50 per stream) can be written
again: they reached stdout, their IDs had not reached the KV store yet.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Set

from .aws import aws_error_code, describe_aws_error
from .events import EventFormatter, EventSink, event_time
from .kvstore import KvStoreError
from .lookup_settings import LookupSettings
from .lookup_state import LookupState
from .metrics import InputMetrics
from .rate_limit import CallCounts, RateLimiter, Throttling, run_in_threads, run_passes

REQUESTS_PER_SECOND = 2  # LookupEvents: per account and region
PAGE_SIZE = 50
CHUNK_SECONDS = 6 * 3600
MAX_BACKOFF_SECONDS = 60
MAX_STREAM_THREADS = 8
THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
NOT_ENABLED_CODES = {"UnrecognizedClientException", "InvalidClientTokenId", "OptInRequired"}


class StreamStopped(Exception):
    """The stream cannot go on this pass (stop requested, or an error already logged)."""


@dataclass
class Stream:
    region: str
    category: Optional[str]  # None: management events; "insight": Insights events
    name: str = ""
    skip: bool = False  # a region the account has not enabled (all-regions mode): skipped from then on
    throttling: Throttling = field(default_factory=lambda: Throttling(MAX_BACKOFF_SECONDS))
    seen: Set[str] = field(default_factory=set)


class EventHistoryInput:
    def __init__(
        self,
        settings: LookupSettings,
        regions: List[str],
        client_for: Callable[[str], Any],
        state: LookupState,
        sink: EventSink,
        metrics: InputMetrics,
        logger: logging.Logger,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._client_for = client_for
        self._state = state
        self._sink = sink
        self._metrics = metrics
        self._logger = logger
        self._stop = stop
        self._clock = clock
        self._formatter = EventFormatter(settings.stanza, settings.index, settings.host)
        categories: List[Optional[str]] = [None, "insight"] if settings.include_insights else [None]
        self.streams = [Stream(region, category) for region in regions for category in categories]
        for stream in self.streams:
            stream.name = f"{settings.account}:{stream.region}:{stream.category or 'management'}"
        self._limiters = {region: RateLimiter(REQUESTS_PER_SECOND) for region in regions}
        self.counts = CallCounts("lookup_calls")

    def progress_fields(self) -> Dict[str, object]:
        return self.counts.progress_fields()

    def run(self) -> None:
        """Passes every ``interval`` seconds until stopped."""
        run_passes(self._settings.interval, self.run_pass, self._stop)

    def run_pass(self) -> None:
        streams = [s for s in self.streams if not s.skip]
        if not streams:
            return
        started = time.monotonic()
        calls_before, events_before = self.counts.totals()
        run_in_threads(self._read_stream_safely, streams, MAX_STREAM_THREADS, "lookup")
        calls_after, events_after = self.counts.totals()
        if not self._stop.is_set():
            self._logger.info(
                "Event history pass done: streams=%d events=%d lookup_calls=%d duration_s=%.1f",
                len(streams),
                events_after - events_before,
                calls_after - calls_before,
                time.monotonic() - started,
            )

    # --- one stream -----------------------------------------------------------------------------------------

    def _read_stream_safely(self, stream: Stream) -> None:
        try:
            self._read_stream(stream)
        except Exception:  # a bug must not end the input: the stream is read again next pass
            self._logger.exception("%s: unexpected error; the window is read again next pass", stream.name)

    def _read_stream(self, stream: Stream) -> None:
        settings = self._settings
        try:
            cursor, seen = self._state.load(settings.name, stream.name)
        except KvStoreError as exc:
            self._logger.warning(
                "%s: %s; this pass skips it (its cursor is needed to avoid duplicates)", stream.name, exc
            )
            return
        stream.seen = seen
        now = self._clock()
        start = (now - settings.start_days * 86400) if cursor is None else cursor - settings.delay_seconds
        start = max(start, now - 90 * 86400)
        chunk_start = start
        while chunk_start < now and not self._stop.is_set():
            chunk_end = min(now, chunk_start + CHUNK_SECONDS)
            try:
                self._read_window(stream, chunk_start, chunk_end)
            except StreamStopped:
                return
            try:
                self._state.advance(settings.name, stream.name, chunk_end, chunk_end - settings.delay_seconds)
            except KvStoreError as exc:
                self._logger.warning(
                    "%s: saving its cursor failed: %s; the window is read again next pass", stream.name, exc
                )
                return
            chunk_start = chunk_end

    def _read_window(self, stream: Stream, start: float, end: float) -> None:
        request: Dict[str, Any] = {
            "StartTime": datetime.fromtimestamp(start, timezone.utc),
            "EndTime": datetime.fromtimestamp(end, timezone.utc),
            "MaxResults": PAGE_SIZE,
        }
        attribute = self._settings.lookup_attribute()
        if attribute:
            request["LookupAttributes"] = [attribute]
        if stream.category:
            request["EventCategory"] = stream.category
        token: Optional[str] = None
        while True:
            page = self._call(stream, {**request, "NextToken": token} if token else request)
            if page is None:  # the NextToken was refused: read the window again from its newest end
                token = None
                continue
            self._write_page(stream, page.get("Events") or [])
            token = page.get("NextToken")
            if not token:
                return

    def _call(self, stream: Stream, request: Dict[str, Any]) -> Optional[dict]:
        client = self._client_for(stream.region)
        limiter = self._limiters[stream.region]
        while True:
            try:
                page = limiter.call(lambda: self._counted(client.lookup_events, request), self._stop)
            except Exception as exc:
                code = aws_error_code(exc)
                if code in THROTTLE_CODES:
                    self._throttled(stream, limiter)
                    continue
                if code == "InvalidNextTokenException":
                    self._logger.info("%s: the NextToken was refused (expired); reading the window again", stream.name)
                    return None
                self._failed(stream, exc, code)
                raise StreamStopped() from None
            if page is None:
                raise StreamStopped()
            lasted = stream.throttling.answered()
            if lasted is not None:
                self._logger.info("%s: LookupEvents answers again after %.0f s of throttling", stream.name, lasted)
            return page

    def _counted(self, lookup_events: Callable[..., dict], request: Dict[str, Any]) -> dict:
        self.counts.called()
        return lookup_events(**request)

    def _throttled(self, stream: Stream, limiter: RateLimiter) -> None:
        self.counts.was_throttled()
        self._metrics.error("throttled")
        starts, wait = stream.throttling.throttled()
        if starts:
            self._logger.warning(
                "%s: LookupEvents is throttled (ThrottlingException; the API allows %d requests/s per account and "
                "region, shared with every other caller); backing off",
                stream.name,
                REQUESTS_PER_SECOND,
            )
        limiter.hold_off(wait)

    def _failed(self, stream: Stream, exc: BaseException, code: str) -> None:
        if code in NOT_ENABLED_CODES and self._settings.all_regions:
            stream.skip = True
            self._logger.info(
                "%s: region %s is not enabled for this account (%s); skipped", stream.name, stream.region, code
            )
            return
        message, _ = describe_aws_error(exc, "looking up CloudTrail events (LookupEvents)", f"in {stream.region}")
        self._metrics.error(code or type(exc).__name__)
        self._logger.error("%s: %s; the window is read again next pass", stream.name, message)

    def _write_page(self, stream: Stream, page: List[dict]) -> None:
        events: List[str] = []
        written: List[str] = []
        newest: Optional[float] = None
        invalid = filtered = repeated = 0
        for item in page:
            event_id = str(item.get("EventId") or "")
            if event_id in stream.seen:
                repeated += 1
                continue
            text = item.get("CloudTrailEvent") or ""
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                invalid += 1
                self._logger.warning(
                    "%s: event %s has a CloudTrailEvent that is not a JSON object (%s); skipped",
                    stream.name,
                    event_id,
                    exc,
                )
                written.append(event_id)  # remembered, so it is reported once
                continue
            if not self._settings.wanted(
                str(record.get("eventSource", "")), str(record.get("eventName", "")), record.get("readOnly") is True
            ):
                filtered += 1
                continue
            account = str(record.get("recipientAccountId") or "unknown")
            source = f"aws:cloudtrail:lookup:{account}:{stream.region}"
            events.append(self._formatter.for_object(source, self._settings.sourcetype).format(text, record))
            written.append(event_id)
            moment = _epoch(record.get("eventTime"))
            if moment is not None and (newest is None or moment > newest):
                newest = moment
        if events:
            self._sink.write(events)
            self._metrics.events_written(self._settings.sourcetype, len(events), newest)
            self.counts.wrote(len(events))
        self._metrics.add(records_filtered=filtered, records_invalid=invalid, records_skipped_resume=repeated)
        if written:
            stream.seen.update(written)
            try:
                self._state.save_seen(self._settings.name, stream.name, written, newest or self._clock())
            except KvStoreError as exc:
                self._logger.warning(
                    "%s: %s; %d events written but not recorded: a restart before the cursor moves can write them "
                    "again",
                    stream.name,
                    exc,
                    len(written),
                )


def _epoch(value: Any) -> Optional[float]:
    text = event_time(value)
    return float(text) if text is not None else None
