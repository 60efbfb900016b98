"""`eventpipe local put|get|ls`, `eventpipe events tail` and `eventpipe logs`, run as a user would
against local mode; and the AWS path of `events tail` (its temporary rule and queue) against the same
emulator, whose engine routes a rule created at run time like EventBridge does."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from eventpipe.local.emulator import Emulator
from eventpipe.ops.context import OpsContext
from eventpipe.ops.follow import EVERY_EVENT, TAP_PREFIX, TemporaryTap, rule_pattern

pytestmark = pytest.mark.integration


def _env(emulator: Emulator) -> dict[str, str]:
    return {**os.environ, "EVENTPIPE_LOCAL_STATE_DIR": str(emulator.state_dir)}


def eventpipe(emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventpipe.ops.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(emulator),
    )


class Running:
    """A following command in the background; its output lines read with deadlines."""

    def __init__(self, emulator: Emulator, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventpipe.ops.main", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(emulator),
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()

    def wait_for(self, lines: queue.Queue[str], predicate: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no matching line within {timeout}s (exit code {self.process.poll()})")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(line):
                return line

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


@pytest.fixture
def running(emulator: Emulator) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(*args: str) -> Running:
        started.append(Running(emulator, *args))
        return started[-1]

    yield start
    for command in started:
        if command.process.poll() is None:
            command.stop()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _put(emulator: Emulator, tmp_path: Path, key: str, body: bytes = b'{"id": 1}\n') -> None:
    source = tmp_path / Path(key).name
    source.write_bytes(body)
    done = eventpipe(emulator, "local", "put", str(source), key, "--wait")
    assert done.returncode == 0, done.stderr
    assert f"/{key} (" in done.stdout


# ---- local put / ls / get -----------------------------------------------------------------------------
def test_local_put_then_ls_and_get_return_the_uploaded_object(emulator: Emulator, tmp_path: Path) -> None:
    key = f"{_unique('put')}/people.jsonl"
    body = b'{"id": 1, "name": "Ada"}\n{"id": 2, "name": "Grace"}\n'

    _put(emulator, tmp_path, key, body)

    listed = eventpipe(emulator, "local", "ls", key.split("/")[0])
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[-1] for line in listed.stdout.splitlines()] == [key]
    assert listed.stdout.split()[2] == str(len(body))
    got = subprocess.run(
        [sys.executable, "-m", "eventpipe.ops.main", "local", "get", key],
        capture_output=True,
        timeout=60,
        check=False,
        env=_env(emulator),
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout == body


def test_local_get_of_a_missing_key_fails_in_one_line(emulator: Emulator) -> None:
    done = eventpipe(emulator, "local", "get", _unique("missing"))

    assert done.returncode == 1
    assert done.stderr.startswith("error: reading s3://")
    assert len(done.stderr.strip().splitlines()) == 1


def test_local_put_of_a_missing_file_is_a_usage_error(emulator: Emulator, tmp_path: Path) -> None:
    done = eventpipe(emulator, "local", "put", str(tmp_path / "absent.json"))

    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot read ")


# ---- events tail ----------------------------------------------------------------------------------------
def _tail(emulator: Emulator, *args: str) -> list[dict[str, Any]]:
    done = eventpipe(emulator, "events", "tail", "--local", "--since", "10m", "--no-follow", "--json", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _keys(records: list[dict[str, Any]]) -> set[str]:
    return {record["event"]["detail"]["object"]["key"] for record in records}


def test_events_tail_since_shows_each_upload_with_the_rules_it_matched(
    emulator: Emulator, tmp_path: Path
) -> None:
    prefix = _unique("tail")
    data_key, text_key = f"{prefix}/data.json", f"{prefix}/notes.txt"
    _put(emulator, tmp_path, data_key)
    _put(emulator, tmp_path, text_key, b"plain text")

    everything = [r for r in _tail(emulator) if r["event"]["detail"]["object"]["key"].startswith(prefix)]
    ingest_only = _tail(emulator, "--consumer", "ingest")

    assert _keys(everything) == {data_key, text_key}
    rules = {r["event"]["detail"]["object"]["key"]: r["rules"] for r in everything}
    ingest_rule = emulator.outputs["IngestRuleName"]
    audit_rule = emulator.outputs["AuditRuleName"]
    assert set(rules[data_key]) >= {ingest_rule, audit_rule}
    assert audit_rule in rules[text_key]
    assert ingest_rule not in rules[text_key]
    assert data_key in _keys(ingest_only)
    assert text_key not in _keys(ingest_only)
    assert {r["bus"] for r in everything} == {emulator.outputs["EventBusName"]}
    assert {"received_at", "replay_name"} <= everything[0].keys()


def test_events_tail_follows_new_events_as_they_arrive(
    emulator: Emulator, tmp_path: Path, running: Callable[..., Running]
) -> None:
    tail = running("events", "tail", "--local")
    tail.wait_for(tail.stderr, lambda line: line.startswith("following events"))
    key = f"{_unique('follow')}/data.json"

    _put(emulator, tmp_path, key)

    line = tail.wait_for(tail.stdout, lambda text: key in text)
    assert "Object Created" in line
    assert emulator.outputs["IngestRuleName"] in line


# ---- logs -----------------------------------------------------------------------------------------------
def test_logs_show_the_invocation_that_handled_an_upload(emulator: Emulator, tmp_path: Path) -> None:
    key = f"{_unique('logs')}/data.json"
    _put(emulator, tmp_path, key)

    done = eventpipe(emulator, "logs", "ingest", "--local", "--since", "5m")

    assert done.returncode == 0, done.stderr
    assert key in done.stdout
    assert "START RequestId:" in done.stdout
    assert "REPORT RequestId:" in done.stdout


def test_logs_since_leaves_out_older_invocations(emulator: Emulator, tmp_path: Path) -> None:
    key = f"{_unique('old')}/data.json"
    _put(emulator, tmp_path, key)
    time.sleep(1.5)  # the next window starts after this invocation's log records

    done = eventpipe(emulator, "logs", "ingest", "--local", "--since", "1s")

    assert done.returncode == 0, done.stderr
    assert key not in done.stdout


def test_logs_follow_prints_new_lines_as_they_are_written(
    emulator: Emulator, tmp_path: Path, running: Callable[..., Running]
) -> None:
    logs = running("logs", "ingest", "--local", "--follow", "--since", "1s")
    logs.wait_for(logs.stderr, lambda line: line.startswith("following logs of"))
    key = f"{_unique('logfollow')}/data.json"

    _put(emulator, tmp_path, key)

    assert key in logs.wait_for(logs.stdout, lambda text: key in text)


def test_logs_of_a_consumer_without_a_function_is_a_usage_error(emulator: Emulator) -> None:
    done = eventpipe(emulator, "logs", "audit", "--local")

    assert done.returncode == 2
    assert "has no Lambda function" in done.stderr


# ---- the AWS path: a temporary rule to a temporary queue ------------------------------------------------
@pytest.fixture
def ctx(emulator: Emulator) -> OpsContext:
    credentials = emulator.credentials
    return OpsContext.from_outputs(
        emulator.outputs,
        stack=emulator.stack,
        region=emulator.region,
        endpoint=emulator.endpoint,
        credentials={
            "aws_access_key_id": credentials.access_key_id,
            "aws_secret_access_key": credentials.secret_access_key,
        },
    )


def _tap_resources(ctx: OpsContext) -> tuple[list[str], list[str]]:
    rules = ctx.client("events").list_rules(NamePrefix=TAP_PREFIX, EventBusName=ctx.outputs["EventBusName"])
    queues = ctx.client("sqs").list_queues(QueueNamePrefix=TAP_PREFIX).get("QueueUrls", [])
    return [rule["Name"] for rule in rules["Rules"]], queues


def test_a_temporary_tap_receives_new_events_and_removes_its_rule_and_queue(
    ctx: OpsContext, emulator: Emulator
) -> None:
    key = f"{_unique('tap')}/data.json"
    with TemporaryTap(ctx, rule_pattern(ctx, emulator.outputs["IngestRuleName"]), wait_seconds=1) as tap:
        assert tap.name in _tap_resources(ctx)[0]
        emulator.client("s3").put_object(Bucket=emulator.outputs["BucketName"], Key=key, Body=b'{"id": 1}')
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while key not in seen:
            assert time.monotonic() < deadline, f"the tap did not receive {key}; saw {seen}"
            seen += [event.object_key or "" for event in tap.receive()]

    assert tap.leftovers == []
    rules, queues = _tap_resources(ctx)
    assert tap.name not in rules
    assert not [url for url in queues if url.endswith(tap.name)]


def test_a_temporary_tap_is_removed_when_the_command_is_interrupted(ctx: OpsContext) -> None:
    names: list[str] = []

    def interrupted_while_following() -> None:
        with TemporaryTap(ctx, EVERY_EVENT, wait_seconds=1) as tap:
            names.append(tap.name)
            assert tap.name in _tap_resources(ctx)[0]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_while_following()

    rules, queues = _tap_resources(ctx)
    assert names[0] not in rules
    assert not [url for url in queues if url.endswith(names[0])]
