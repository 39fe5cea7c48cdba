"""Counters of one input, logged as one structured line every interval and at shutdown.

The line is key=value (searchable in _internal with `index=_internal source=*ta_aws_cloudtrail* metrics`);
solnlib's events_ingested line feeds UCC's monitoring dashboard.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Callable, Dict, Optional

COUNTERS = (
    "messages_received",
    "messages_deleted",
    "messages_skipped",
    "messages_failed",
    "messages_given_up",
    "messages_released",
    "objects_ingested",
    "objects_skipped_done",
    "objects_skipped_digest",
    "objects_skipped_other",
    "objects_rejected",
    "objects_failed",
    "objects_waited",
    "objects_missing",
    "records_written",
    "records_filtered",
    "records_invalid",
    "records_rejected",
    "records_skipped_resume",
    "bytes_read",
    "sns_rejected",
)


class InputMetrics:
    def __init__(
        self,
        logger: logging.Logger,
        stanza: str,
        index: Optional[str],
        account: Optional[str],
        interval: float = 60.0,
        progress: Optional[Callable[[], Dict[str, object]]] = None,
    ) -> None:
        self._logger = logger
        self._stanza = stanza
        self._index = index or "default"
        self._account = account
        self._interval = interval
        self._progress = progress  # an input's own fields for the line (the backfill's days done, ETA, ...)
        self._lock = threading.Lock()
        self._period: Counter = Counter()
        self._total: Counter = Counter()
        self._errors: Counter = Counter()
        self._events_by_sourcetype: Counter = Counter()
        self._newest_event_time: Optional[float] = None
        self._newest_sent_time: Optional[float] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._started = time.time()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                if value:
                    self._period[name] += value
                    self._total[name] += value

    def events_written(self, sourcetype: str, count: int, newest_event_time: Optional[float]) -> None:
        with self._lock:
            self._period["records_written"] += count
            self._total["records_written"] += count
            self._events_by_sourcetype[sourcetype] += count
            if newest_event_time is not None and (
                self._newest_event_time is None or newest_event_time > self._newest_event_time
            ):
                self._newest_event_time = newest_event_time

    def error(self, kind: str) -> None:
        with self._lock:
            self._errors[kind] += 1

    def message_sent_at(self, sent_epoch: float) -> None:
        with self._lock:
            if self._newest_sent_time is None or sent_epoch > self._newest_sent_time:
                self._newest_sent_time = sent_epoch

    def totals(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._total)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self.log(final=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.log(final=False)

    def log(self, final: bool) -> None:
        now = time.time()
        with self._lock:
            counts = self._total if final else self._period
            fields = [f"{name}={counts.get(name, 0)}" for name in COUNTERS]
            if self._newest_event_time is not None:
                fields.append(f"event_lag_s={now - self._newest_event_time:.1f}")
            if self._newest_sent_time is not None:
                fields.append(f"sqs_lag_s={now - self._newest_sent_time:.1f}")
            if self._errors:
                fields.append("errors=" + ",".join(f"{k}:{v}" for k, v in sorted(self._errors.items())))
            by_sourcetype = dict(self._events_by_sourcetype)
            self._events_by_sourcetype.clear()
            self._period.clear()
        if self._progress is not None:
            fields += [f"{name}={value}" for name, value in self._progress().items()]
        scope = f"final uptime_s={now - self._started:.0f}" if final else f"interval_s={self._interval:.0f}"
        self._logger.info("metrics input=%s %s %s", self._stanza, scope, " ".join(fields))
        from solnlib import log

        for sourcetype, count in by_sourcetype.items():
            log.events_ingested(self._logger, self._stanza, sourcetype, count, self._index, account=self._account)
