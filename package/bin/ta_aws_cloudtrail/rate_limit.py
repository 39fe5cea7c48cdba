"""A request-rate limit shared by the threads of one input: at most ``rate`` calls in any ``per`` seconds."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Deque, List, Optional, TypeVar

T = TypeVar("T")
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
