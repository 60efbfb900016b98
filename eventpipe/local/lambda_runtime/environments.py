"""Local Lambda execution environments: worker processes kept warm between invocations.

Each environment is one `worker.py HANDLER` child (`command`, chosen by the runtime) speaking JSON
lines over its stdin/stdout (see worker.py); the function's output goes to its log file. An environment
enforces the function's timeout by killing the process, and reports a crash, a failed init or a timeout
with the error Lambda's runtime would return. `EnvironmentPool` holds one function's environments:
warm ones are reused, a configuration change retires them, at most `limit` run at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventpipe.local.state import open_private

# Lambda's init phase may take up to 10 s before the invocation's own timeout starts.
AWS_INIT_PHASE_LIMIT_SECONDS = 10.0


@dataclass
class Outcome:
    result: bytes | None = None
    error: dict[str, Any] | None = None
    worker_lost: bool = False  # the environment cannot be reused (timed out, crashed, failed init)


class ExecutionEnvironment:
    """A warm execution environment: one `worker.py` child process for one configuration."""

    def __init__(
        self,
        *,
        command: list[str],
        handler: str,
        timeout: int,
        fingerprint: str,
        env: Mapping[str, str],
        cwd: Path,
        log_file: Path,
    ) -> None:
        self.fingerprint = fingerprint
        self._timeout = timeout
        self._initialized = False
        self._closed = False
        self._buffer = b""
        self.handler = handler
        with open_private(log_file, "ab") as log_stream:
            self._process = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_stream,
            )
        self._selector = selectors.DefaultSelector()
        assert self._process.stdout is not None
        self._selector.register(self._process.stdout, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self._process.pid

    def invoke(self, request_id: str, payload: Any, invoked_arn: str) -> Outcome:
        timeout = float(self._timeout)
        if not self._initialized:
            init_limit = max(AWS_INIT_PHASE_LIMIT_SECONDS, timeout)
            message = self._read(deadline=time.monotonic() + init_limit)
            if message is None:
                return self._lost(request_id, "Sandbox.Timedout", f"Init timed out after {init_limit:.2f} s")
            if message.get("init") != "ok":
                self.kill()
                return Outcome(error=message.get("error", {}), worker_lost=True)
            self._initialized = True
        deadline = time.monotonic() + timeout
        request = {
            "request_id": request_id,
            "payload": payload,
            "deadline_ms": int(time.time() * 1000 + timeout * 1000),
            "invoked_function_arn": invoked_arn,
        }
        assert self._process.stdin is not None
        try:
            self._process.stdin.write((json.dumps(request) + "\n").encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            return self._exited(request_id)
        reply = self._read(deadline=deadline)
        if reply is None:
            if self._process.poll() is not None:
                return self._exited(request_id)
            return self._lost(
                request_id, "Sandbox.Timedout", f"Task timed out after {self._timeout:.2f} seconds"
            )
        if "error" in reply:
            return Outcome(error=reply["error"])
        return Outcome(result=reply["result"].encode())

    def _read(self, *, deadline: float) -> dict[str, Any] | None:
        """The next protocol line, or None on timeout or when the process ended."""
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(timeout=remaining):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                self._process.wait()
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def _lost(self, request_id: str, error_type: str, reason: str) -> Outcome:
        self.kill()
        return Outcome(
            error={"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {reason}"},
            worker_lost=True,
        )

    def _exited(self, request_id: str) -> Outcome:
        code = self._process.wait()
        status = f"signal: {-code}" if code < 0 else f"exit status {code}"
        return self._lost(request_id, "Runtime.ExitError", f"Runtime exited with error: {status}")

    def peak_memory_mb(self) -> int | None:
        """Peak resident memory of the environment (Linux /proc), for the REPORT line."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        return None

    def terminate(self) -> None:
        """Kill the process from another thread; the invoking thread sees it exit and cleans up."""
        if self._process.poll() is None:
            self._process.kill()

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._close()

    def stop(self, grace_seconds: float = 2.0) -> None:
        """Close stdin (the worker's signal to exit), then kill it if it lingers."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._close()

    def _close(self) -> None:
        if self._closed:  # a lost worker is killed by its invocation, then released as unusable
            return
        self._closed = True
        self._selector.close()
        if self._process.stdout is not None:
            self._process.stdout.close()
        if self._process.stdin is not None and not self._process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()


class EnvironmentPool:
    """The warm environments of one function; at most `limit` run at once."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._idle: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._starting = 0
        self._changed = threading.Condition()
        self._closed = False

    def acquire(self, fingerprint: str, spawn: Callable[[], ExecutionEnvironment]) -> ExecutionEnvironment:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("the Lambda runtime is shut down")
                for worker in [w for w in self._idle if w.fingerprint != fingerprint]:
                    # A configuration change retires the warm environments, as on AWS.
                    self._idle.remove(worker)
                    worker.stop()
                if self._idle:
                    worker = self._idle.pop()
                    self._busy.add(worker)
                    return worker
                if len(self._busy) + self._starting < self._limit:
                    self._starting += 1
                    break
                self._changed.wait()
        try:
            worker = spawn()
        except BaseException:
            with self._changed:
                self._starting -= 1
                self._changed.notify()
            raise
        with self._changed:
            self._starting -= 1
            self._busy.add(worker)
            if self._closed:
                worker.kill()  # shut down while it was starting; its invocation fails as lost
        return worker

    def release(self, worker: ExecutionEnvironment, *, reusable: bool) -> None:
        """Give a worker back after an invocation and wake a waiting one."""
        with self._changed:
            self._busy.discard(worker)
            if reusable and not self._closed:
                self._idle.append(worker)
            else:
                worker.kill()
            self._changed.notify()

    def close(self) -> None:
        """Stop idle workers and kill running ones (their invocations end as lost)."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._changed.notify_all()
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.terminate()

    def pids(self) -> list[int]:
        with self._changed:
            return [w.pid for w in self._idle]
