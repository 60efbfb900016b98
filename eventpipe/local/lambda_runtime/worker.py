"""One local Lambda execution environment: a child process that imports one handler once and then
serves invocations, one at a time, until its stdin closes.

Started by `eventpipe.local.lambda_runtime` as `FUNCTIONS_PYTHON -I .../worker.py HANDLER` with
the function's environment: isolated mode keeps PYTHON* variables, user site-packages and the working
directory off the path, and the worker adds LAMBDA_TASK_ROOT itself, as Lambda's runtime does. The
script uses only the standard library, so it runs on the functions' own environment.

The protocol is one JSON document per line: requests on stdin, replies on the process's original
stdout. File descriptors 1 and 2 are then pointed at the function's log file (stderr as given by the
parent), so whatever the function prints or logs can never corrupt the protocol, exactly like
CloudWatch Logs receives a Lambda function's stdout and stderr.

Messages:
- worker -> runtime, once, after the init phase: `{"init": "ok"}` or `{"init": "error", "error": ERR}`
- runtime -> worker: `{"request_id", "payload", "deadline_ms", "invoked_function_arn"}`
- worker -> runtime: `{"request_id", "result": "<JSON text>"}` or `{"request_id", "error": ERR}`
ERR is the payload the Python runtime returns for an error: errorMessage, errorType, stackTrace.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

Handler = Callable[[Any, "LambdaContext"], Any]


@dataclass
class LambdaContext:
    """The context object the Python runtime passes to a handler (the attributes Powertools reads)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = field(default=None)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def error_payload(
    exc: BaseException, *, error_type: str | None = None, from_handler: bool = True
) -> dict[str, Any]:
    """The error document Lambda's Python runtime returns for an exception raised by a handler.

    The stack trace starts at the handler's frame, as on AWS (the worker's own frame is left out);
    init failures carry none."""
    frames = exc.__traceback__.tb_next if from_handler and exc.__traceback__ else None
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(frames)) if frames else [],
    }


def load_handler(handler: str) -> Handler:
    """Import `package.module.function` the way the runtime does, with its error types."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise _RuntimeError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise _RuntimeError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise _RuntimeError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    handler_function: Handler = function
    return handler_function


class _RuntimeError(Exception):
    """An init failure reported with the runtime's own errorType (not the Python class name)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _context(request: dict[str, Any]) -> LambdaContext:
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    return LambdaContext(
        function_name=name,
        function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        invoked_function_arn=request["invoked_function_arn"],
        memory_limit_in_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
        aws_request_id=request["request_id"],
        log_group_name=os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{name}"),
        log_stream_name=os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        deadline_ms=int(request["deadline_ms"]),
    )


def _invoke(handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"request_id": request["request_id"]}
    try:
        result = handler(request["payload"], _context(request))
    except Exception as exc:
        reply["error"] = error_payload(exc)
        # The runtime logs unhandled errors to the function's log, as CloudWatch would show them.
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        return reply
    try:
        reply["result"] = json.dumps(result)
    except (TypeError, ValueError) as exc:
        reply["error"] = error_payload(exc, error_type="Runtime.MarshalError", from_handler=False)
        reply["error"]["errorMessage"] = f"Unable to marshal response: {exc}"
    return reply


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def serve(handler_name: str, requests: TextIO, channel: TextIO) -> None:
    """Init (import the handler), then answer requests until the input ends."""
    try:
        handler = load_handler(handler_name)
    except _RuntimeError as exc:
        error = error_payload(exc, error_type=exc.error_type, from_handler=False)
        _send(channel, {"init": "error", "error": error})
        return
    _send(channel, {"init": "ok"})
    for line in requests:
        if not line.strip():
            continue
        reply = _invoke(handler, json.loads(line))
        sys.stdout.flush()
        sys.stderr.flush()
        _send(channel, reply)


def main() -> None:
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root and task_root not in sys.path:
        sys.path.insert(0, task_root)
    # Ctrl-C in the emulator's terminal reaches the whole process group; the runtime owns shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.argv[1], sys.stdin, channel)


if __name__ == "__main__":
    main()
