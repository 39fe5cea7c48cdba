"""The shared request-rate limit: slots held from a call's start to ``per`` after its end."""

import threading

from ta_aws_cloudtrail.rate_limit import MARGIN_SECONDS, RateLimiter, Throttling


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
