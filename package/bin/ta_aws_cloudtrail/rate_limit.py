"""Pacing of the inputs that poll an API: a request-rate limit shared by the threads of one input (at most ``rate``
calls in any ``per`` seconds), throttling episodes with growing waits, passes every interval run over the input's
threads, and the counts of calls and events those threads share."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")
X = TypeVar("X")
# Calls are spaced a little more than the limit asks: the service measures arrivals, and the network adds jitter.
MARGIN_SECONDS = 0.05


class RateLimiter:
    """Each call holds a slot from when it starts until ``per`` seconds after it has finished: the service sees the
    request arrive somewhere in between, so arrivals are at least ``per`` apart from the call ``rate`` before."""

    def __init__(self, rate: int, per: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._per = per + MARGIN_SECONDS
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: Deque[List[float]] = deque()  # [time the slot frees from]; inf while its call runs

    def call(self, function: Callable[[], T], stop: threading.Event) -> Optional[T]:
        """Run ``function`` once a slot is free; None (without running it) if ``stop`` is set meanwhile."""
        slot = self._acquire(stop)
        if slot is None:
            return None
        try:
            return function()
        finally:
            with self._lock:
                slot[0] = self._clock() + self._per

    def _acquire(self, stop: threading.Event) -> Optional[List[float]]:
        while True:
            with self._lock:
                now = self._clock()
                self._slots = deque(slot for slot in self._slots if slot[0] > now)
                if len(self._slots) < self._rate:
                    slot = [float("inf")]
                    self._slots.append(slot)
                    return slot
                wait = min(slot[0] for slot in self._slots) - now
            if stop.wait(min(max(wait, 0.01), 1.0)):
                return None

    def hold_off(self, seconds: float) -> None:
        """After a throttling answer: no call starts before ``seconds`` from now."""
        with self._lock:
            until = self._clock() + seconds
            self._slots = deque([[until] for _ in range(self._rate)])


class Throttling:
    """One throttling episode at a time, so that an input logs one line when it starts and one when it ends: each
    throttling answer doubles the wait (from 1 s up to ``max_backoff``), the next good answer ends the episode."""

    def __init__(self, max_backoff: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_backoff = max_backoff
        self._clock = clock
        self._lock = threading.Lock()
        self._since: Optional[float] = None
        self._backoff = 1.0

    def throttled(self) -> Tuple[bool, float]:
        """(whether this answer starts an episode, how long to hold off the calls)."""
        with self._lock:
            starts = self._since is None
            if starts:
                self._since = self._clock()
            wait = self._backoff
            self._backoff = min(self._backoff * 2, self._max_backoff)
        return starts, wait

    def answered(self) -> Optional[float]:
        """How long the episode lasted if this good answer ends one, else None."""
        if self._since is None:  # the common case, without the lock
            return None
        with self._lock:
            since, self._since, self._backoff = self._since, None, 1.0
        return None if since is None else self._clock() - since


def run_passes(interval: float, run_pass: Callable[[], None], stop: threading.Event) -> None:
    """``run_pass`` every ``interval`` seconds (from the start of one pass to the next) until ``stop`` is set."""
    while not stop.is_set():
        started = time.monotonic()
        run_pass()
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def run_in_threads(work: Callable[[X], None], items: Sequence[X], max_threads: int, thread_name_prefix: str) -> None:
    """``work(item)`` for every item, at most ``max_threads`` at a time; returns once all are done."""
    with ThreadPoolExecutor(
        max_workers=max(1, min(len(items), max_threads)), thread_name_prefix=thread_name_prefix
    ) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


class CallCounts:
    """The API calls, events written and throttling answers of a polling input, counted across its threads: the
    fields it adds to the metrics line, and each pass's figures."""

    def __init__(self, calls_field: str) -> None:
        self._calls_field = calls_field  # the name of the calls field on the metrics line ("lookup_calls")
        self._lock = threading.Lock()
        self._calls = 0
        self._events = 0
        self._throttled = 0

    def called(self) -> None:
        with self._lock:
            self._calls += 1

    def wrote(self, events: int) -> None:
        with self._lock:
            self._events += events

    def was_throttled(self) -> None:
        with self._lock:
            self._throttled += 1

    def totals(self) -> Tuple[int, int]:
        """(calls, events) so far: a pass's figures are the difference across it."""
        with self._lock:
            return self._calls, self._events

    def progress_fields(self) -> Dict[str, object]:
        with self._lock:
            per_1000 = f"{1000.0 * self._calls / self._events:.1f}" if self._events else "n/a"
            return {self._calls_field: self._calls, "calls_per_1000_events": per_1000, "throttled": self._throttled}
