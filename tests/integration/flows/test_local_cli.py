"""`eventpipe local start|stop|status` and the emulator's Lambda Invoke API, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eventpipe.local.deploy import ensure_template

pytestmark = pytest.mark.integration


def eventpipe(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventpipe.ops.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_status_reports_the_running_emulator_as_json(emulator: Any) -> None:
    """`local status --json` prints the state file: endpoint, pid, stack, region and stack outputs."""
    done = eventpipe("local", "status", "--json", "--state-dir", str(emulator.state_dir))

    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["endpoint"] == emulator.endpoint
    assert state["outputs"]["BucketName"] == emulator.outputs["BucketName"]
    assert {"pid", "stack", "region", "account"} <= state.keys()


def test_status_without_an_emulator_fails_with_one_line(tmp_path: Path) -> None:
    """No emulator: a non-zero exit and a one-line reason, never a traceback."""
    done = eventpipe("local", "status", "--state-dir", str(tmp_path))

    assert done.returncode != 0
    assert done.stderr.strip().startswith("error: no local emulator is running")
    assert len(done.stderr.strip().splitlines()) == 1


def test_start_detached_then_stop(tmp_path: Path) -> None:
    """`local start --detach` returns once the stack is deployed and leaves the emulator running;
    a second start is refused; `local stop` ends it and removes the state file."""
    template = str(ensure_template("dev"))
    started = eventpipe("local", "start", "--detach", "--state-dir", str(tmp_path), "--template", template)
    try:
        assert started.returncode == 0, started.stderr
        assert "AWS_ENDPOINT_URL=http://127.0.0.1:" in started.stdout
        again = eventpipe("local", "start", "--detach", "--state-dir", str(tmp_path), "--template", template)
        assert again.returncode != 0
        assert "already running" in again.stderr
    finally:
        stopped = eventpipe("local", "stop", "--state-dir", str(tmp_path))

    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "state.json").exists()
    assert eventpipe("local", "status", "--state-dir", str(tmp_path)).returncode != 0


def test_lambda_invoke_api_runs_functions_in_the_local_runtime(aws: Any, outputs: dict[str, str]) -> None:
    """AWS Lambda Invoke: RequestResponse returns 200 with the function's payload and the executed
    version, Event is accepted with 202, DryRun answers 204, an unknown function is
    ResourceNotFoundException."""
    client = aws("lambda")
    function = outputs["IngestFunctionName"]

    sync = client.invoke(FunctionName=function, Payload=b"{}")
    accepted = client.invoke(FunctionName=function, InvocationType="Event", Payload=b"{}")
    dry = client.invoke(FunctionName=function, InvocationType="DryRun", Payload=b"{}")

    assert sync["StatusCode"] == 200
    assert sync["ExecutedVersion"] == "$LATEST"
    json.loads(sync["Payload"].read())
    assert accepted["StatusCode"] == 202
    assert dry["StatusCode"] == 204
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="no-such-function", Payload=b"{}")


def test_start_on_a_taken_port_fails_fast_with_one_line(emulator: Any, tmp_path: Path) -> None:
    """A port already in use is reported at once (moto's server thread alone would make the start
    wait for its whole start-up timeout), and nothing is left running."""
    taken = emulator.endpoint.rsplit(":", 1)[1]

    done = eventpipe("local", "start", "--detach", "--port", taken, "--state-dir", str(tmp_path), timeout=90)

    assert done.returncode == 1
    (reason,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert f"port {taken} on 127.0.0.1 is not available" in reason
    assert not (tmp_path / "state.json").exists()


def test_usage_errors_are_one_line_with_exit_2() -> None:
    """Argument errors found by the parser read like every other failure: one `error:` line."""
    done = eventpipe("local", "start", "--port", "70000")

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: Invalid value for '--port': Input should be less than or equal to 65535 "
        "(see `eventpipe local start --help`)"
    ]
