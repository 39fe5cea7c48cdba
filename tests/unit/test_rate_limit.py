"""The shared request-rate limit: slots held from a call's start to ``per`` after its end; the threads of a pass and
the counts they share."""

import threading
import time

import pytest

from ta_aws_cloudtrail.rate_limit import MARGIN_SECONDS, CallCounts, RateLimiter, Throttling, run_in_threads


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class AdvancingStop(threading.Event):
    """A stop event whose waits advance the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout=None) -> bool:
        self.clock.now += timeout or 0
        return self.is_set()


def test_calls_start_no_sooner_than_per_after_the_call_rate_before_ended():
    clock = FakeClock()
    limiter = RateLimiter(2, 1.0, clock)
    stop = AdvancingStop(clock)
    starts = []

    def call(duration: float):
        starts.append(clock.now)
        clock.now += duration
        return "answer"

    for duration in (0.3, 0.3, 0.3, 0.0, 0.0):
        assert limiter.call(lambda d=duration: call(d), stop) == "answer"
    per = 1.0 + MARGIN_SECONDS
    # the third call waits for the first call's end + per; the fourth for the second's
    assert starts[2] >= 0.3 + per - 1e-9
    assert starts[3] >= 0.6 + per - 1e-9
    for earlier, later in zip(starts, starts[2:]):
        assert later - earlier >= 1.0


def test_hold_off_blocks_every_slot_and_stop_ends_the_wait():
    clock = FakeClock()
    limiter = RateLimiter(2, 1.0, clock)
    stop = AdvancingStop(clock)
    limiter.hold_off(5.0)
    started = []
    limiter.call(lambda: started.append(clock.now), stop)
    assert started[0] >= 5.0
    stop.set()
    limiter.hold_off(5.0)
    assert limiter.call(lambda: "never", stop) is None


def test_a_throttling_episode_doubles_its_waits_up_to_the_cap_and_ends_at_the_next_good_answer() -> None:
    clock = FakeClock()
    throttling = Throttling(max_backoff=4.0, clock=clock)
    assert throttling.answered() is None  # no episode: nothing to report
    assert [throttling.throttled() for _ in range(4)] == [(True, 1.0), (False, 2.0), (False, 4.0), (False, 4.0)]
    clock.now = 9.0
    assert throttling.answered() == 9.0
    assert throttling.answered() is None
    assert throttling.throttled() == (True, 1.0)  # a new episode starts from 1 s again


def test_run_in_threads_runs_every_item_at_most_max_threads_at_a_time_and_returns_when_all_are_done() -> None:
    running, most, done = [0], [0], []
    lock = threading.Lock()

    def work(item: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
            done.append((item, threading.current_thread().name))

    run_in_threads(work, list(range(7)), 3, "pass")

    assert sorted(item for item, _ in done) == list(range(7))
    assert most[0] == 3
    assert all(name.startswith("pass") for _, name in done)
    run_in_threads(work, [], 3, "pass")  # nothing to do: returns at once
    assert len(done) == 7


def test_run_in_threads_raises_what_a_work_item_raised_after_the_others_ran() -> None:
    done = []

    def work(item: int) -> None:
        if item == 0:
            raise RuntimeError("item 0 failed")
        done.append(item)

    with pytest.raises(RuntimeError, match="item 0 failed"):
        run_in_threads(work, [0, 1, 2], 2, "pass")
    assert sorted(done) == [1, 2]


def test_call_counts_add_up_across_threads_and_give_the_metrics_fields() -> None:
    counts = CallCounts("lookup_calls")
    assert counts.progress_fields() == {"lookup_calls": 0, "calls_per_1000_events": "n/a", "throttled": 0}

    def work(_: int) -> None:
        for _ in range(1000):
            counts.called()
            counts.wrote(4)
        counts.was_throttled()

    run_in_threads(work, list(range(4)), 4, "count")

    assert counts.totals() == (4000, 16000)
    assert counts.progress_fields() == {"lookup_calls": 4000, "calls_per_1000_events": "250.0", "throttled": 4}
