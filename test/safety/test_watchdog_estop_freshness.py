"""Watchdog, e-stop latch and stamp freshness."""
import pytest

from hlai_ros.safety import (
    FRESH,
    FUTURE,
    OUT_OF_ORDER,
    STALE,
    UNSTAMPED,
    EStopLatch,
    FreshnessLimits,
    StampCheck,
    Watchdog,
)


def test_watchdog_expires_after_the_timeout_and_counts_expiries():
    dog = Watchdog(0.5)
    assert dog.expired(0.0), 'never fed must count as expired'
    dog.feed(10.0)
    assert not dog.expired(10.5)
    assert dog.expired(10.51) and dog.expiries == 1
    dog.feed(11.0)
    assert not dog.expired(11.2) and dog.expired(12.0) and dog.expiries == 2
    with pytest.raises(ValueError, match='timeout_s'):
        Watchdog(0.0)


def test_estop_latches_until_an_explicit_release_after_the_hold():
    latch = EStopLatch(hold_s=0.5)
    assert not latch.engaged
    latch.engage('/hlai/estop: True', 1.0)
    assert latch.engaged and latch.engagements == 1
    ok, message = latch.release(1.2)
    assert not ok and 'still held' in message and latch.engaged
    latch.engage('/hlai/estop: True', 1.3)  # still held: no new engagement counted
    assert latch.engagements == 1
    ok, message = latch.release(2.0)
    assert ok and not latch.engaged and 'released' in message
    assert latch.release(2.1)[0]


def test_stamp_check_verdicts():
    check = StampCheck(FreshnessLimits(max_age_s=0.5, max_future_s=0.1))
    s = 10**9
    assert check.check(0, 100 * s) == UNSTAMPED
    assert check.check(100 * s, 100 * s) == FRESH
    assert check.check(100 * s, 100 * s + 1) == FRESH  # a repeat is allowed by default
    assert check.check(99 * s, 100 * s) == STALE
    assert check.check(101 * s, 100 * s) == FUTURE
    assert check.check(100 * s - 1, 100 * s) == OUT_OF_ORDER
    # a stamp from the far future was refused, so it does not lock out the next fresh one
    assert check.check(100 * s + 2, 100 * s + 3) == FRESH
    check.reset()
    assert check.last_ns == -1
    strict = StampCheck(FreshnessLimits(allow_repeat=False))
    assert strict.check(5 * s, 5 * s) == FRESH and strict.check(5 * s, 5 * s) == OUT_OF_ORDER
    with pytest.raises(ValueError, match='max_age_s'):
        FreshnessLimits(max_age_s=float('inf'))
