"""Python handle on the local emulator process, used by tests, the CLI and `make demo`."""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from eventpipe.errors import EventpipeError
from eventpipe.local.deploy import PROJECT_ROOT
from eventpipe.local.state import default_state_dir, pid_alive, read_state, remove_state

LOG_FILE = "emulator.log"


class Emulator:
    def __init__(
        self, state: dict[str, Any], *, state_dir: Path, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        self._state = state
        self.state_dir = state_dir
        self._process = process

    # ---- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        *,
        port: int = 0,
        stage: str = "dev",
        template: Path | None = None,
        state_dir: Path | None = None,
        detach: bool = False,
        timeout: float = 180.0,
    ) -> Emulator:
        """Spawn the emulator process and return once the stack is deployed.

        detach=False ties the process to this handle (stop() or interpreter exit ends it);
        detach=True starts it in its own session so it outlives the caller (`local start --detach`)."""
        state_dir = (state_dir or default_state_dir()).resolve()
        existing = read_state(state_dir)
        if existing and pid_alive(int(existing.get("pid", 0))):
            raise EventpipeError(
                f"an emulator is already running at {existing.get('endpoint')} (pid {existing.get('pid')}); "
                "run `eventpipe local stop` first"
            )
        state_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "eventpipe.local.server",
            "--state-dir",
            str(state_dir),
            "--port",
            str(port),
            "--stage",
            stage,
        ]
        if template is not None:
            command += ["--template", str(Path(template).resolve())]
        if not detach:
            command += ["--parent-pid", str(os.getpid())]
        log_path = state_dir / LOG_FILE
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("AWS_ENDPOINT_URL", None)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=detach,
            )
        deadline = time.monotonic() + timeout
        while True:
            state = read_state(state_dir)
            if state and state.get("pid") == process.pid:
                emulator = cls(state, state_dir=state_dir, process=None if detach else process)
                if not detach:
                    atexit.register(emulator._stop_if_running)
                return emulator
            if process.poll() is not None:
                raise EventpipeError(
                    f"the emulator exited during start-up: {_last_error(log_path)} (full log: {log_path})"
                )
            if time.monotonic() > deadline:
                _terminate(process.pid)
                raise EventpipeError(
                    f"the emulator did not become ready within {timeout:.0f}s (log: {log_path})"
                )
            time.sleep(0.1)

    @classmethod
    def attach(cls, state_dir: Path | None = None) -> Emulator:
        """A handle on an emulator already running (from its state file)."""
        state_dir = (state_dir or default_state_dir()).resolve()
        state = read_state(state_dir)
        if state is None:
            raise EventpipeError(
                f"no local emulator is running (no {state_dir / 'state.json'}); "
                "start one with `eventpipe local start`"
            )
        if not pid_alive(int(state.get("pid", 0))):
            raise EventpipeError(
                f"the local emulator (pid {state.get('pid')}) is not running any more; "
                "start one with `eventpipe local start`"
            )
        return cls(state, state_dir=state_dir)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the emulator process (SIGTERM, then SIGKILL after `timeout`)."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
        else:
            _terminate(self.pid, timeout=timeout)
        remove_state(self.state_dir, pid=self.pid)

    def _stop_if_running(self) -> None:
        if self.running():
            self.stop()

    @property
    def exit_code(self) -> int | None:
        """The process's exit status once it ended (only known for a process this handle started)."""
        return self._process.poll() if self._process is not None else None

    def running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return pid_alive(self.pid)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- what callers use ---------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return str(self._state["endpoint"])

    @property
    def region(self) -> str:
        return str(self._state["region"])

    @property
    def account(self) -> str:
        return str(self._state["account"])

    @property
    def stack(self) -> str:
        return str(self._state["stack"])

    @property
    def pid(self) -> int:
        return int(self._state["pid"])

    @property
    def outputs(self) -> dict[str, str]:
        return dict(self._state.get("outputs", {}))

    @property
    def state(self) -> dict[str, Any]:
        return dict(self._state)

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client pointed at the emulator (dummy credentials)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the emulator accepts any credentials
            **kwargs,
        )

    def status(self) -> dict[str, Any]:
        """Engine and runtime counters from the control endpoint."""
        return self._control("/status")

    def wait_idle(self, timeout: float = 30, *, horizon: float = 2.0) -> None:
        """Return once nothing is queued, no delivery or retry is due within `horizon` seconds and no
        Lambda invocation is in flight (seen twice in a row); raise TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the emulator did not settle within {timeout}s: {self.status()}")
            quiet = quiet + 1 if self._control(f"/idle?horizon={horizon}")["idle"] else 0
            time.sleep(0.05)

    def _control(self, path: str) -> dict[str, Any]:
        control = self._state.get("control")
        if not control:
            raise EventpipeError("this emulator has no control endpoint")
        with urllib.request.urlopen(f"{control}{path}", timeout=10) as response:  # noqa: S310 - local URL
            result: dict[str, Any] = json.loads(response.read())
            return result


def _terminate(pid: int, timeout: float = 15.0) -> None:
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)


def _last_error(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if "Error" in line or "error" in line or " ERROR " in line]
    last = (errors or lines or ["no log output"])[-1]
    return last.split(" ERROR ", 1)[-1].strip()  # a logged error: its message without the log prefix
