"""Local Lambda runtime: runs the real function code of `functions/` for the emulator.

moto stores Lambda functions but cannot run them without Docker (docs/local-mode.md), so the emulator
hands every invocation to this runtime. One module per concern:

- `config`: a function's configuration, read from the emulator's Lambda API (cached per generation);
- `sandbox`: the interpreter and environment variables a function runs with;
- `environments` / `worker`: warm worker processes and the script they run;
- `invoker`: one invocation in a warm environment, with the function's START/END/REPORT log;
- `async_invocations`: Lambda's async retries, event age and destination records;
- `sqs_event_sources`: SQS event source mappings (pollers, batches, partial batch responses);
- `runtime`: `LambdaRuntime`, which composes them.
"""

from eventpipe.local.lambda_runtime.config import (
    AsyncConfig,
    FunctionConfig,
    FunctionNotFoundError,
    function_name_of,
)
from eventpipe.local.lambda_runtime.invoker import InvokeResult, default_concurrency
from eventpipe.local.lambda_runtime.runtime import LambdaRuntime
from eventpipe.local.lambda_runtime.sandbox import FunctionsEnvironmentMissingError
from eventpipe.local.lambda_runtime.sqs_event_sources import SqsEventSources, SqsMapping

__all__ = [
    "AsyncConfig",
    "FunctionConfig",
    "FunctionNotFoundError",
    "FunctionsEnvironmentMissingError",
    "InvokeResult",
    "LambdaRuntime",
    "SqsEventSources",
    "SqsMapping",
    "default_concurrency",
    "function_name_of",
]
