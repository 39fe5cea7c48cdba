"""The CloudWatch Logs input's loop: a trail's log groups read with FilterLogEvents, with a durable cursor per group.

Why per log group and not per stream: FilterLogEvents reads every stream of a group in one call sequence, sorted by
event timestamp (then ingestion time and PutLogEvents request), so quiet streams cost nothing, and one position
orders the whole group. Per-stream reading (GetLogEvents) costs a call per stream each interval, and its tokens,
like stream metadata (lastEventTimestamp, eventually consistent), cannot see an event that arrives late with an
older timestamp.

Each pass reads the *settled* window ``[position, now - delay]``: an event that reaches CloudWatch Logs within
``delay`` of its timestamp is read in a later pass; no window is read twice, so each event costs one read (the
API quota, 5 FilterLogEvents per second per account and region, is the ceiling of the input). The position is the
timestamp of the last event handled and the IDs of the events handled at that millisecond: after a restart the read
starts at that millisecond and skips those IDs. It is saved in the KV store after each batch of events is flushed,
so a SIGKILL can repeat at most the one batch that was flushed and not yet saved. When a window is read to its end,
the position moves to its end.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from .aws import aws_error_code, describe_aws_error
from .cloudwatch_logs_settings import CloudWatchLogsSettings
from .cursors import Cursor, CursorStore
from .events import EventFormatter, EventSink, ObjectEvents
from .kvstore import KvStoreError
from .logs import OutageLog
from .metrics import InputMetrics
from .rate_limit import CallCounts, RateLimiter, Throttling, run_in_threads, run_passes

REQUESTS_PER_SECOND = 5  # FilterLogEvents: per account and region
MAX_BATCH_EVENTS = 500
MAX_GROUP_THREADS = 4
MAX_BACKOFF_SECONDS = 60
# Its cursors are keyed by the stanza (scheme://name): an S3 backfill input of the same name keys its own by name.
RANGE_ID = "filter_log_events"  # cursors of this input (the start position only applies to a first read)
THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException"}


class GroupStopped(Exception):
    """The log group cannot go on this pass (stop requested, or an error already logged)."""


@dataclass
class Position:
    """Everything before ``millis`` is handled, and at ``millis`` the events whose IDs are in ``ids``."""

    millis: int
    ids: Set[str] = field(default_factory=set)

    def encode(self) -> str:
        return json.dumps({"millis": self.millis, "ids": sorted(self.ids)}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Position:
        value = json.loads(text)
        return cls(int(value["millis"]), {str(i) for i in value.get("ids") or []})


@dataclass
class LogGroup:
    name: str
    position: Optional[Position] = None  # None until loaded from the KV store
    saved: Optional[str] = None  # the position as last saved
    error: str = ""  # the last error logged for this group, so that a lasting one is logged once


class CloudWatchLogsInput:
    def __init__(
        self,
        settings: CloudWatchLogsSettings,
        client: Any,
        cursors: CursorStore,
        sink: EventSink,
        metrics: InputMetrics,
        logger: logging.Logger,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._client = client
        self._cursors = cursors
        self._sink = sink
        self._metrics = metrics
        self._logger = logger
        self._stop = stop
        self._clock = clock
        self._formatter = EventFormatter(settings.stanza, settings.index, settings.host)
        self._formatters: Dict[Tuple[str, str], ObjectEvents] = {}
        self._outages = OutageLog(logger)
        self._limiter = RateLimiter(REQUESTS_PER_SECOND)
        self._throttling = Throttling(MAX_BACKOFF_SECONDS)  # one per input: the quota is the account-region's
        self.groups = [LogGroup(name) for name in settings.log_groups]
        self._collection_ready = False
        self.counts = CallCounts("filter_calls")

    def progress_fields(self) -> Dict[str, object]:
        return self.counts.progress_fields()

    def run(self) -> None:
        """Passes every ``interval`` seconds until stopped."""
        run_passes(self._settings.interval, self.run_pass, self._stop)

    def run_pass(self) -> None:
        started = time.monotonic()
        calls_before, events_before = self.counts.totals()
        run_in_threads(self._read_group_safely, self.groups, MAX_GROUP_THREADS, "log-group")
        calls_after, events_after = self.counts.totals()
        if not self._stop.is_set():
            self._logger.info(
                "CloudWatch Logs pass done: log_groups=%d events=%d filter_calls=%d duration_s=%.1f",
                len(self.groups),
                events_after - events_before,
                calls_after - calls_before,
                time.monotonic() - started,
            )

    # --- one log group ----------------------------------------------------------------------------------------

    def _read_group_safely(self, group: LogGroup) -> None:
        try:
            self._read_group(group)
        except GroupStopped:
            pass
        except Exception:  # a bug must not end the input: the group is read again next pass
            self._logger.exception("Log group %s: unexpected error; read again from its position next pass", group.name)

    def _read_group(self, group: LogGroup) -> None:
        settings = self._settings
        now_millis = int(self._clock() * 1000)
        if group.position is None:
            group.position = self._load_position(group, now_millis)
        end = now_millis - settings.delay_seconds * 1000
        if group.position.millis > end:
            return
        # interleaved: ignored by AWS (always interleaved since 2019), needed by moto to sort as AWS does
        request: Dict[str, Any] = {"logGroupName": group.name, "endTime": end, "interleaved": True}
        if settings.stream_prefix:
            request["logStreamNamePrefix"] = settings.stream_prefix
        # the same parameters for every page of a read: a nextToken belongs to the request it came with
        request["startTime"] = group.position.millis
        token: Optional[str] = None
        while True:
            page = self._call(group, {**request, "nextToken": token} if token else request)
            if page is None:  # the nextToken was refused: a new read from the position reached
                request["startTime"] = group.position.millis
                token = None
                continue
            self._handle_page(group, page.get("events") or [])
            token = page.get("nextToken")
            if not token:
                break
        # every event up to `end` is handled
        if group.position.millis <= end:
            group.position = Position(end + 1)
        self._save(group)
        if group.error:
            self._logger.info("Log group %s: read again without error", group.name)
            group.error = ""

    def _load_position(self, group: LogGroup, now_millis: int) -> Position:
        try:
            if not self._collection_ready:  # created here, not at start-up: the KV store may be down then
                self._cursors.ensure_collection()
                self._collection_ready = True
            saved = self._cursors.load(self._settings.stanza, RANGE_ID).get(group.name)
        except KvStoreError as exc:
            self._outages.failure(
                "kvstore_load", f"Log group {group.name}: {exc}; it is read once its position can be loaded"
            )
            raise GroupStopped() from None
        self._outages.recovered("kvstore_load")
        if saved is not None:
            try:
                position = Position.decode(saved)
                group.saved = saved
                return position
            except (ValueError, KeyError, TypeError):
                self._logger.error(
                    "Log group %s: its saved position %r cannot be read; starting from the start position (%s)",
                    group.name,
                    saved[:200],
                    self._settings.start_position,
                )
        start = self._settings.start_millis(now_millis)
        self._logger.info(
            "Log group %s: first read, from %s (epoch ms %d)", group.name, self._settings.start_position, start
        )
        return Position(start)

    def _call(self, group: LogGroup, request: Dict[str, Any]) -> Optional[dict]:
        while True:
            try:
                page = self._limiter.call(lambda: self._counted(request), self._stop)
            except Exception as exc:
                code = aws_error_code(exc)
                if code in THROTTLE_CODES:
                    self._throttled()
                    continue
                if code == "InvalidParameterException" and "nextToken" in request and "token" in str(exc).lower():
                    self._logger.info(
                        "Log group %s: the nextToken was refused (expired); reading on from the position", group.name
                    )
                    return None
                self._failed(group, exc, code)
                raise GroupStopped() from None
            if page is None:
                raise GroupStopped()
            lasted = self._throttling.answered()
            if lasted is not None:
                self._logger.info("FilterLogEvents answers again after %.0f s of throttling", lasted)
            return page

    def _counted(self, request: Dict[str, Any]) -> dict:
        self.counts.called()
        return self._client.filter_log_events(**request)

    def _throttled(self) -> None:
        self.counts.was_throttled()
        starts, wait = self._throttling.throttled()
        self._metrics.error("throttled")
        if starts:
            self._logger.warning(
                "FilterLogEvents is throttled in %s (ThrottlingException; the quota is %d requests/s per account and "
                "region, shared with every other caller); backing off",
                self._settings.region,
                REQUESTS_PER_SECOND,
            )
        self._limiter.hold_off(wait)

    def _failed(self, group: LogGroup, exc: BaseException, code: str) -> None:
        message, _ = describe_aws_error(
            exc, "reading CloudWatch Logs log group", f"{group.name} in {self._settings.region}"
        )
        self._metrics.error(code or type(exc).__name__)
        if message != group.error:
            self._logger.error("%s; tried again every interval (this is logged again only if it changes)", message)
            group.error = message
        else:
            self._logger.debug("%s (again)", message)

    # --- events -------------------------------------------------------------------------------------------------

    def _handle_page(self, group: LogGroup, log_events: List[dict]) -> None:
        position = group.position
        assert position is not None
        settings = self._settings
        events: List[str] = []
        newest: Optional[float] = None
        invalid_ids: List[str] = []
        filtered = repeated = 0
        for log_event in log_events:
            millis = int(log_event.get("timestamp") or 0)
            event_id = str(log_event.get("eventId") or "")
            if millis < position.millis or (millis == position.millis and event_id in position.ids):
                repeated += 1
                continue
            stream = str(log_event.get("logStreamName") or "")
            if settings.wants_stream(stream):
                event = self._event(group.name, stream, str(log_event.get("message") or ""), millis)
                if event is None:
                    invalid_ids.append(event_id)
                else:
                    events.append(event[0])
                    newest = event[1] if newest is None else max(newest, event[1])
            else:
                filtered += 1
            if millis > position.millis:
                position = group.position = Position(millis, {event_id})
            else:
                position.ids.add(event_id)
            if len(events) >= MAX_BATCH_EVENTS:
                self._write(group, events, newest)
                events, newest = [], None
        self._write(group, events, newest)
        self._metrics.add(records_filtered=filtered, records_skipped_resume=repeated, records_invalid=len(invalid_ids))
        if invalid_ids:
            self._logger.warning(
                "Log group %s: %d log events are not JSON objects (not CloudTrail records), skipped; event ids: %s",
                group.name,
                len(invalid_ids),
                ", ".join(invalid_ids[:10]) + (", ..." if len(invalid_ids) > 10 else ""),
            )

    def _event(self, group: str, stream: str, message: str, millis: int) -> Optional[Tuple[str, float]]:
        """The formatted event and its time, or None when the message is not a JSON object."""
        text = message.strip()
        try:
            record = json.loads(text)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        formatter = self._formatters.get((group, stream))
        if formatter is None:
            if len(self._formatters) > 10_000:
                self._formatters.clear()
            formatter = self._formatters[(group, stream)] = self._formatter.for_object(
                f"aws:cloudwatchlogs:{group}:{stream}", self._settings.sourcetype
            )
        default_time = f"{millis // 1000}.{millis % 1000:03d}"
        return formatter.format_with_default_time(text, record, default_time), millis / 1000.0

    def _write(self, group: LogGroup, events: List[str], newest: Optional[float]) -> None:
        """Flush the events, then save the position they reach."""
        if events:
            self._sink.write(events)
            self._metrics.events_written(self._settings.sourcetype, len(events), newest)
            self.counts.wrote(len(events))
            self._save(group)

    def _save(self, group: LogGroup) -> None:
        assert group.position is not None
        value = group.position.encode()
        if value == group.saved:
            return
        try:
            self._cursors.save([Cursor(self._settings.stanza, group.name, RANGE_ID, value)])
        except KvStoreError as exc:
            # reading goes on from the position kept in memory; a restart before it is saved repeats events
            self._outages.failure(
                "kvstore_save",
                f"Log group {group.name}: saving its position failed: {exc}; events written until it is saved "
                "would be written again after a restart",
            )
            return
        self._outages.recovered("kvstore_save")
        group.saved = value
