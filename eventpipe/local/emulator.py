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
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.contract.paths import PROJECT_ROOT
from eventpipe.local.auth import LocalCredentials, sign_headers
from eventpipe.local.state import (
    INSTANCE_ENV,
    absolute,
    check_state_dir,
    default_state_dir,
    new_instance_cookie,
    open_private,
    owns_process,
    pid_alive,
    prepare_state_dir,
    read_state,
    remove_state,
    state_file,
)

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
        context: Mapping[str, str] | None = None,
    ) -> Emulator:
        """Spawn the emulator process and return once the stack is deployed.

        detach=False ties the process to this handle (stop() or interpreter exit ends it);
        detach=True starts it in its own session so it outlives the caller (`local start --detach`).
        `context`: CDK context overrides checked by `deploy.parse_context`; the template is synthesized
        with them here (its own file in cdk.out) and deployed."""
        if context:
            if template is not None:
                raise UsageError("-c overrides need the stack synthesized here: drop --template, or use one")
            from eventpipe.local.deploy import ensure_template

            template = ensure_template(stage, context=context)
        state_dir = prepare_state_dir(state_dir or default_state_dir())
        existing = read_state(state_dir)
        if existing and owns_process(existing):
            raise EventpipeError(
                f"an emulator is already running at {existing.get('endpoint')} (pid {existing.get('pid')}); "
                "run `eventpipe local stop` first"
            )
        credentials = LocalCredentials.generate()
        instance = new_instance_cookie()
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
        # The secret travels in the environment (readable only by this user), not on the command line.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **credentials.environment(), INSTANCE_ENV: instance}
        env.pop("AWS_ENDPOINT_URL", None)
        with open_private(log_path, "ab") as log:
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
            if state and state.get("pid") == process.pid and state.get("instance") == instance:
                emulator = cls(state, state_dir=state_dir, process=None if detach else process)
                if not detach:
                    atexit.register(emulator._stop_if_running)
                return emulator
            if process.poll() is not None:
                raise EventpipeError(
                    f"the emulator exited during start-up: {_last_error(log_path)} (full log: {log_path})"
                )
            if time.monotonic() > deadline:
                process.kill()  # our own child: the Popen handle is proof enough
                process.wait()
                raise EventpipeError(
                    f"the emulator did not become ready within {timeout:.0f}s (log: {log_path})"
                )
            time.sleep(0.1)

    @classmethod
    def attach(cls, state_dir: Path | None = None) -> Emulator:
        """A handle on an emulator already running (from its state file)."""
        state_dir = absolute(state_dir or default_state_dir())
        if not os.path.lexists(state_dir):
            raise EventpipeError(
                f"no local emulator is running (no {state_file(state_dir)}); "
                "start one with `eventpipe local start`"
            )
        check_state_dir(state_dir)
        state = read_state(state_dir)
        if state is None:
            raise EventpipeError(
                f"no local emulator is running (no {state_file(state_dir)}); "
                "start one with `eventpipe local start`"
            )
        if not owns_process(state):
            if pid_alive(_int(state.get("pid"))):
                raise EventpipeError(
                    f"{state_file(state_dir)} names pid {state.get('pid')}, which is not an emulator "
                    "started by you from this state directory; not touching it (delete the file if stale)"
                )
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
        elif owns_process(self._state):  # checked again right before signalling (pids get reused)
            _terminate(self.pid, self._state, timeout=timeout)
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
        return owns_process(self._state)

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

    @property
    def credentials(self) -> LocalCredentials:
        """The credentials generated for this run: the only ones the emulator accepts."""
        found = LocalCredentials.from_state(self._state)
        if found is None:
            raise EventpipeError(f"{state_file(self.state_dir)} holds no credentials: restart local mode")
        return found

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client pointed at the emulator, signing with this run's credentials."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            **self.credentials.boto3_kwargs(),
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
        url = f"{control}{path}"
        headers = sign_headers(method="GET", url=url, credentials=self.credentials, region=self.region)
        request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310 - local URL
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local URL
            result: dict[str, Any] = json.loads(response.read())
            return result


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _terminate(pid: int, state: dict[str, Any], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; each signal only while the pid is still our emulator."""
    if not owns_process(state):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while owns_process(state):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)


def _last_error(log_path: Path) -> str:
    try:
        with open_private(log_path, "rb") as stream:
            text = stream.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
    except (OSError, EventpipeError):
        return "no log"
    errors = [line for line in lines if "Error" in line or "error" in line or " ERROR " in line]
    last = (errors or lines or ["no log output"])[-1]
    return last.split(" ERROR ", 1)[-1].strip()  # a logged error: its message without the log prefix
