"""Local mode's one clock and one delayed-call scheduler.

AWS waits minutes between retries (EventBridge's backoff, Lambda's async retries 1 and 2 minutes
apart) and ages events out after hours. Locally every such duration lasts AWS seconds x `scale` real
seconds, the same scale for the EventBridge engine and the Lambda runtime, so the schedules keep their
shape and the tests stay fast. `Scheduler` runs the delayed calls of both (deliveries and retries).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

# 1 AWS second lasts 10 ms locally: Lambda's 1-minute retry takes 0.6 s, EventBridge's 24 h 14 min.
DEFAULT_TIME_SCALE = 0.01
TIME_SCALE_ENV = "EVENTPIPE_LOCAL_TIME_SCALE"


@dataclass(frozen=True, slots=True)
class LocalClock:
    """Monotonic time, and the conversion between AWS durations and local (real) ones."""

    scale: float = DEFAULT_TIME_SCALE

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> LocalClock:
        return cls(scale=float(environ.get(TIME_SCALE_ENV, DEFAULT_TIME_SCALE)))

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def local_seconds(self, aws_seconds: float) -> float:
        """How long `aws_seconds` of AWS time last locally."""
        return aws_seconds * self.scale

    def aws_seconds(self, local_seconds: float) -> float:
        """How much AWS time `local_seconds` of local time stand for."""
        return local_seconds / self.scale


class Scheduler:
    """Runs callbacks after a delay (local seconds) on `workers` threads, earliest first.

    A callback that raises is logged and never stops a worker. `shutdown` drops what has not started."""

    def __init__(self, *, name: str, workers: int = 1) -> None:
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._running = 0
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def call_later(self, delay: float, callback: Callable[[], None]) -> bool:
        """Queue `callback` to run in `delay` seconds; False (not queued) once shut down."""
        with self._cond:
            if self._stopping:
                return False
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), callback))
            self._cond.notify()
            return True

    def busy(self, horizon: float = 0.0) -> bool:
        """True while a callback runs or one is due within `horizon` seconds."""
        with self._cond:
            return bool(self._running or (self._queue and self._queue[0][0] <= time.monotonic() + horizon))

    def pending(self) -> int:
        """Callbacks queued or running."""
        with self._cond:
            return len(self._queue) + self._running

    def shutdown(self, timeout: float = 5.0) -> int:
        """Stop the workers (a running callback finishes); returns how many queued calls were dropped."""
        with self._cond:
            self._stopping = True
            dropped = len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=timeout)
        return dropped

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                _, _, callback = heapq.heappop(self._queue)
                self._running += 1
            try:
                callback()
            except Exception:  # a worker must survive anything a callback does
                log.exception("scheduled call failed")
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
