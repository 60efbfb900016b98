"""Tiny Lambda handlers that make the local runtime's behaviour observable (process id, environment,
context, attempts). Deployed by the runtime tests as `tests.integration.local.lambda_probes.<name>`, imported
from the project root like the real functions."""

from __future__ import annotations

import json
import os
import time
from typing import Any

OBSERVED_VARIABLES = (
    "MODE",
    "AWS_ENDPOINT_URL",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONFIG_FILE",
    "_HANDLER",
)


def echo(event: Any, context: Any) -> dict[str, Any]:
    print("echo called", json.dumps(event))
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {name: os.environ.get(name) for name in OBSERVED_VARIABLES},
    }


def record_attempt(event: Any, context: Any) -> dict[str, Any]:
    """Appends the request id to ATTEMPTS_FILE, then fails while MODE=broken."""
    with open(os.environ["ATTEMPTS_FILE"], "a") as out:
        out.write(context.aws_request_id + "\n")
    if os.environ.get("MODE") == "broken":
        raise ValueError(f"table missing: {event.get('n')}")
    return {"ok": event.get("n")}


def sleep(event: Any, context: Any) -> dict[str, Any]:
    time.sleep(event["seconds"])
    return {"slept": event["seconds"], "pid": os.getpid()}


def crash(event: Any, context: Any) -> None:
    os._exit(3)


def unserializable(event: Any, context: Any) -> set[int]:
    return {1, 2}


def environment(event: Any, context: Any) -> dict[str, Any]:
    """The worker's whole environment, import path and interpreter (what could change code loading)."""
    import sys

    return {
        "env": dict(os.environ),
        "sys_path": sys.path,
        "executable": sys.executable,
        "flags": str(sys.flags),
    }


def import_dev_only(event: Any, context: Any) -> str:
    """Imports a package of the dev environment that functions/requirements.txt does not list."""
    import typer  # noqa: F401 - the import is the probe

    return "imported"


def import_runtime_packages(event: Any, context: Any) -> list[str]:
    """What Lambda's runtime plus functions/requirements.txt provide imports fine."""
    import aws_lambda_powertools
    import boto3

    return [boto3.__version__, aws_lambda_powertools.__name__]


def sqs_batch(event: Any, context: Any) -> dict[str, Any]:
    """Appends each invocation's records to RECORD_FILE (one JSON line); raises if a body is "raise",
    reports the records whose body starts with "fail" in batchItemFailures."""
    with open(os.environ["RECORD_FILE"], "a") as out:
        out.write(json.dumps(event["Records"]) + "\n")
    if any(record["body"].startswith("raise") for record in event["Records"]):
        raise RuntimeError("asked to fail the whole batch")
    failures = [r["messageId"] for r in event["Records"] if r["body"].startswith("fail")]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def concurrency_counter(event: Any, context: Any) -> int:
    """Counts concurrent invocations in COUNTER_FILE ({"active", "peak", "done"}, under a file lock).
    Each invocation waits (up to HOLD_SECONDS) for one more invocation than LIMIT to run beside it, so
    a poller that broke the limit would be seen in "peak"."""
    import fcntl

    def update(change: int, done: int = 0) -> dict[str, int]:
        with open(os.environ["COUNTER_FILE"], "a+") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            stream.seek(0)
            state = json.loads(stream.read() or '{"active": 0, "peak": 0, "done": 0}')
            state["active"] += change
            state["peak"] = max(state["peak"], state["active"])
            state["done"] += done
            stream.seek(0)
            stream.truncate()
            stream.write(json.dumps(state))
            return state

    update(+1)
    deadline = time.monotonic() + float(os.environ["HOLD_SECONDS"])
    while update(0)["active"] <= int(os.environ["LIMIT"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return update(-1, done=1)["active"]
