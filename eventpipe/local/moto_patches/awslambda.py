"""moto Lambda patches: Invoke runs the function in the project's LambdaRuntime (H5), and every Lambda
API write that can change what an invocation runs with moves a process-wide counter (H11), so the
runtime reuses the configuration it read until the counter moves. SQS event source mappings (H13) are
validated like Lambda does, kept out of moto's inline invocation inside SendMessage, and announced to
the local pollers (`lambda_runtime.sqs_event_sources`).

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

    _install_event_source_mappings(hooks, lambda_models)


def _install_event_source_mappings(hooks: Hooks, lambda_models: Any) -> None:
    """H13: SQS event source mappings run by the local pollers, validated as Lambda validates them."""
    from moto.awslambda.exceptions import InvalidParameterValueException
    from moto.sqs.models import sqs_backends

    backend_class = lambda_models.LambdaBackend
    create, update, delete = (
        backend_class.create_event_source_mapping,
        backend_class.update_event_source_mapping,
        backend_class.delete_event_source_mapping,
    )

    def queue_of(backend: Any, arn: str) -> Any:
        queues = sqs_backends[backend.account_id][backend.region_name].queues.values()
        return next((queue for queue in list(queues) if queue.queue_arn == arn), None)

    def check(backend: Any, spec: dict[str, Any], function_name: str | None, queue_arn: str) -> None:
        maximum = (spec.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if maximum is not None and not 2 <= int(maximum) <= 1000:
            # ScalingConfig.MaximumConcurrency is 2-1000 (CloudFormation/Lambda API reference).
            raise InvalidParameterValueException(
                f"MaximumConcurrency must be between 2 and 1000, got {maximum}"
            )
        queue = queue_of(backend, queue_arn)
        if queue is None or function_name is None:
            return
        function = backend._lambdas.get_function_by_name_or_arn_with_qualifier(function_name)
        visibility = int(getattr(queue, "visibility_timeout", 30) or 30)
        # "Your function's timeout must be less than or equal to the queue's visibility timeout. Lambda
        # validates this requirement when you create or update an event source mapping"
        # (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
        if int(function.timeout) > visibility:
            raise InvalidParameterValueException(
                f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
                f"{function.timeout} seconds"
            )

    def detach(backend: Any, esm: Any) -> None:
        # moto invokes a queue's mappings inline in SendMessage (one made-up record per message); the
        # local pollers receive, invoke and delete instead.
        queue = queue_of(backend, esm.event_source_arn)
        if queue is not None:
            queue.lambda_event_source_mappings.pop(esm.function_arn, None)

    def changed() -> None:
        if hooks.event_sources is not None:
            hooks.event_sources.changed()

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        check(self, spec, spec.get("FunctionName"), str(spec.get("EventSourceArn", "")))
        esm = create(self, spec)
        detach(self, esm)
        changed()
        return esm

    def update_event_source_mapping(self: Any, uuid: str, spec: dict[str, Any]) -> Any:
        current = self.get_event_source_mapping(uuid)
        if current is not None:
            check(self, spec, spec.get("FunctionName", current.function_arn), current.event_source_arn)
        try:
            return update(self, uuid, spec)
        finally:
            changed()

    def delete_event_source_mapping(self: Any, uuid: str) -> Any:
        try:
            return delete(self, uuid)
        finally:
            changed()

    replace(backend_class, "create_event_source_mapping", create_event_source_mapping)
    replace(backend_class, "update_event_source_mapping", update_event_source_mapping)
    replace(backend_class, "delete_event_source_mapping", delete_event_source_mapping)


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
