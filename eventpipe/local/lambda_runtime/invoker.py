"""One invocation of a function in a warm execution environment, with the function's log.

- Execution environments (`environments.py`): each function runs in its own worker process, kept warm
  between invocations; a concurrent invocation gets another worker, up to `max_workers_per_function`
  (default `default_concurrency()`, or EVENTPIPE_LOCAL_LAMBDA_CONCURRENCY for the emulator: Lambda
  scales per function, a laptop's cores do not).
- Timeout: the configured Timeout is enforced; the worker is killed and the invocation fails with
  `Sandbox.Timedout` / "Task timed out after N.00 seconds". MemorySize is reported, not enforced.
- Logs: one file per function under `log_dir`, with START / END / REPORT lines around each invocation.
- Code reload: the environments' fingerprint covers the code under functions/ and schemas/ (`code.py`)
  besides the configuration, so an edit is picked up by the next invocation ("code changed" in the log).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventpipe.local.lambda_runtime.code import code_fingerprint
from eventpipe.local.lambda_runtime.config import LATEST, FunctionConfig
from eventpipe.local.lambda_runtime.environments import EnvironmentPool, ExecutionEnvironment, Outcome
from eventpipe.local.lambda_runtime.sandbox import is_loader_variable
from eventpipe.local.state import open_private

# Concurrent environments per function unless configured: one per core, at most 4. Locally the emulator
# process serving every API call is the bottleneck (benchmark 5 ran as fast with 2 as with 4 on 2 cores),
# so more workers only cost memory (~70 MB each).
MAX_DEFAULT_CONCURRENCY = 4


def default_concurrency() -> int:
    """Warm environments per function: one per core (at least 2), at most MAX_DEFAULT_CONCURRENCY."""
    return max(2, min(MAX_DEFAULT_CONCURRENCY, os.cpu_count() or 1))


@dataclass(frozen=True)
class InvokeResult:
    """What Lambda's Invoke API (RequestResponse) returns."""

    status: int
    payload: bytes
    function_error: str | None
    request_id: str
    executed_version: str = LATEST


class Invoker:
    """Runs one invocation at a time per environment, in per-function pools of warm environments."""

    def __init__(
        self,
        *,
        log_dir: Path,
        max_workers_per_function: int,
        command: Callable[[FunctionConfig], list[str]],
        environment: Callable[[FunctionConfig], dict[str, str]],
        cwd: Path,
    ) -> None:
        self.log_dir = log_dir
        self._max_workers = max_workers_per_function
        self._command, self._environment, self._cwd = command, environment, cwd
        self._pools: dict[str, EnvironmentPool] = {}
        self._code_seen: dict[str, str] = {}  # per function: the code fingerprint of its last invocation
        self._log_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def invoke(self, config: FunctionConfig, request_id: str, payload: Any) -> InvokeResult:
        pool = self._pool(config.name)
        code = code_fingerprint(self._cwd)
        with self._lock:
            previous, self._code_seen[config.name] = self._code_seen.get(config.name), code
        if previous is not None and previous != code:
            self.log(config.name, "code changed under functions/ or schemas/, new worker")
        fingerprint = f"{config.fingerprint}:{code}"
        worker = pool.acquire(fingerprint, lambda: self._spawn(config, fingerprint))
        self.log(config.name, f"START RequestId: {request_id} Version: {LATEST}")
        started = time.monotonic()
        outcome = Outcome(worker_lost=True)
        peak_mb = None
        try:
            outcome = worker.invoke(request_id, payload, config.arn)
            peak_mb = worker.peak_memory_mb()
        finally:
            pool.release(worker, reusable=not outcome.worker_lost)
        duration_ms = (time.monotonic() - started) * 1000
        if outcome.error is not None and outcome.worker_lost:
            # Errors raised by the handler are logged by the worker; environment failures here.
            self.log(config.name, f"{outcome.error.get('errorMessage', '')}")
        self.log(config.name, f"END RequestId: {request_id}")
        self.log(
            config.name,
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Memory Size: {config.memory_size} MB\tMax Memory Used: {peak_mb or '?'} MB",
        )
        if outcome.error is not None:
            error = {"errorMessage": "", "errorType": "Unknown", **outcome.error, "requestId": request_id}
            return InvokeResult(200, json.dumps(error).encode(), "Unhandled", request_id)
        return InvokeResult(200, outcome.result or b"null", None, request_id)

    @property
    def max_workers_per_function(self) -> int:
        return self._max_workers

    def warm_worker_pids(self, function_name: str) -> list[int]:
        pool = self._pools.get(function_name)
        return pool.pids() if pool else []

    def log_file(self, function_name: str) -> Path:
        return self.log_dir / f"{function_name}.log"

    def log(self, function_name: str, line: str) -> None:
        self._pool(function_name)  # ensures the lock exists
        with self._log_locks[function_name], open_private(self.log_file(function_name), "ab") as out:
            out.write((line + "\n").encode())

    def close(self) -> None:
        for pool in list(self._pools.values()):
            pool.close()

    def _pool(self, name: str) -> EnvironmentPool:
        with self._lock:
            if name not in self._pools:
                self._pools[name] = EnvironmentPool(self._max_workers)
                self._log_locks[name] = threading.Lock()
            return self._pools[name]

    def _spawn(self, config: FunctionConfig, fingerprint: str) -> ExecutionEnvironment:
        dropped = sorted(name for name in config.environment if is_loader_variable(name))
        if dropped:
            self.log(
                config.name,
                f"[WARNING] local mode does not pass {', '.join(dropped)} to the function: "
                "variables that change how code is loaded are ignored",
            )
        return ExecutionEnvironment(
            command=self._command(config),
            handler=config.handler,
            timeout=config.timeout,
            fingerprint=fingerprint,
            env=self._environment(config),
            cwd=self._cwd,
            log_file=self.log_file(config.name),
        )
