"""The one local clock and delayed-call scheduler shared by the EventBridge engine and the Lambda runtime."""

from __future__ import annotations

import threading

from eventpipe.local.clock import DEFAULT_TIME_SCALE, TIME_SCALE_ENV, LocalClock, Scheduler


def test_aws_durations_are_scaled_both_ways() -> None:
    clock = LocalClock(scale=0.01)

    assert clock.local_seconds(60) == 0.6  # Lambda's first async retry
    assert clock.aws_seconds(0.6) == 60


def test_the_scale_comes_from_the_environment_or_the_default() -> None:
    assert LocalClock.from_environment({}).scale == DEFAULT_TIME_SCALE
    assert LocalClock.from_environment({TIME_SCALE_ENV: "0.5"}).scale == 0.5


def test_a_due_call_runs_and_a_failing_call_does_not_stop_the_worker() -> None:
    scheduler = Scheduler(name="test")
    ran = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    scheduler.call_later(0, fail)
    scheduler.call_later(0, ran.set)

    assert ran.wait(5)
    scheduler.shutdown()


def test_a_later_call_is_pending_but_not_due_and_shutdown_drops_it() -> None:
    scheduler = Scheduler(name="test")
    ran = threading.Event()
    scheduler.call_later(3600, ran.set)

    assert scheduler.pending() == 1
    assert not scheduler.busy(horizon=0)
    assert scheduler.busy(horizon=7200)
    assert scheduler.shutdown() == 1
    assert not scheduler.call_later(0, ran.set)
    assert not ran.is_set()
