"""moto Lambda patches: Invoke runs the function in the project's LambdaRuntime (H5), and every Lambda
API write that can change what an invocation runs with moves a process-wide counter (H11), so the
runtime reuses the configuration it read until the counter moves.

See docs/local-mode.md for what each one reproduces and the test that shows it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from eventpipe.local.moto_patches.hooks import Hooks
from eventpipe.local.moto_patches.patching import replace

_generation_lock = threading.Lock()
_lambda_config_generation = 0  # H11; written under _generation_lock


def lambda_config_generation() -> int:
    """Moves whenever a Lambda API write may have changed what an invocation runs with (H11)."""
    return _lambda_config_generation


def install(hooks: Hooks) -> None:
    """H5 (Invoke runs the function in the LambdaRuntime) and H11 (configuration generation)."""
    from moto.awslambda import models as lambda_models
    from moto.awslambda.exceptions import UnknownFunctionException

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes | None:  # H5
        runtime = hooks.runtime
        if runtime is None:
            raise UnknownFunctionException(function_name)
        from eventpipe.local.lambda_runtime import FunctionNotFoundError

        invocation_type = headers.get("X-Amz-Invocation-Type", "RequestResponse")
        payload = json.loads(body) if body else {}
        try:
            if invocation_type == "DryRun":
                self.get_function(function_name, qualifier)
                return b""
            if invocation_type == "Event":
                request_id = runtime.invoke_async(function_name, payload)
                response_headers["x-amzn-RequestId"] = request_id
                return b""
            result = runtime.invoke_sync(function_name, payload)
        except FunctionNotFoundError:
            arn = f"arn:aws:lambda:{hooks.region}:{hooks.account}:function:{function_name}"
            raise UnknownFunctionException(arn) from None
        response_headers["x-amzn-RequestId"] = result.request_id
        response_headers["X-Amz-Executed-Version"] = result.executed_version
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        response_headers["Content-Length"] = str(len(result.payload))
        return bytes(result.payload)

    replace(lambda_models.LambdaBackend, "invoke", invoke)

    for name in LAMBDA_CONFIGURATION_WRITES:  # H11
        replace(lambda_models.LambdaBackend, name, bumping(getattr(lambda_models.LambdaBackend, name)))


# LambdaBackend methods behind the API calls that change a function's configuration or existence.
LAMBDA_CONFIGURATION_WRITES = (
    "create_function",
    "delete_function",
    "update_function_code",
    "update_function_configuration",
    "put_function_event_invoke_config",
    "update_function_event_invoke_config",
    "delete_function_event_invoke_config",
)


def bumping(write: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _lambda_config_generation
        try:
            return write(self, *args, **kwargs)
        finally:  # after the write, also a failed one (it may have changed something first)
            with _generation_lock:  # two concurrent writes must move the counter twice
                _lambda_config_generation += 1

    return wrapper
