"""Local Lambda runtime: runs the real function code of `functions/` for the emulator.

moto stores Lambda functions but cannot run them without Docker (aws-facts.md, gap 4), so the emulator
hands every invocation to this runtime. What it reproduces, and how:

- Execution environments (`lambda_environments`): each function runs in its own worker process, kept warm
  between invocations; a concurrent invocation gets another worker, up to `max_workers_per_function`
  (default `default_concurrency()`, or EVENTPIPE_LOCAL_LAMBDA_CONCURRENCY for the emulator: Lambda
  scales per function, a laptop's cores do not).
- Configuration is read from the emulator's Lambda API (Handler, Environment, Timeout, MemorySize and
  the event invoke config), so UpdateFunctionConfiguration takes effect like on AWS: a changed
  configuration retires the warm workers. It is read on every invocation, unless the caller passes
  `config_generation`, a counter that changes whenever a Lambda configuration may have changed (the
  emulator's hooks count Lambda API writes): then a read is reused until the counter moves, which
  saves three API requests per async invocation.
- Interpreter: workers run on the functions' own Python environment (`.build/functions-venv`, built
  by `make setup` from functions/requirements.txt plus the boto3/botocore the Lambda runtime provides),
  in isolated mode (`python -I`: no PYTHON* variable, user site-packages or working directory on the
  path); the worker puts only LAMBDA_TASK_ROOT on sys.path. A package missing from
  functions/requirements.txt therefore fails locally as it would on AWS.
- Environment: built from scratch, never inherited from the emulator: Lambda's own variables, the
  credentials of this local-mode run and `AWS_ENDPOINT_URL` pointing at the emulator, plus the
  function's configured variables except those that change how code is loaded (`LOADER_VARIABLES`:
  LD_PRELOAD, PYTHONPATH, ...), which are dropped with a warning in the function's log even when
  UpdateFunctionConfiguration sets them. X-Ray is disabled (there is no daemon locally). Host AWS
  configuration files are hidden from the worker, so it can never reach a real account.
- Timeout: the configured Timeout is enforced; the worker is killed and the invocation fails with
  `Sandbox.Timedout` / "Task timed out after N.00 seconds". MemorySize is reported, not enforced.
- Async invocations: accepted at once; retried per MaximumRetryAttempts (0-2) after delays of
  Lambda's 1 and 2 minutes scaled by `time_scale`; events older than MaximumEventAgeInSeconds (scaled
  the same way) are dropped; then the on-failure (or on-success) destination, SQS or SNS, receives
  Lambda's invocation record. Retries keep the request id, as on AWS. A function-level
  DeadLetterConfig is not supported: moto does not store it (the stack uses on-failure destinations).
- Logs: one file per function under `log_dir`, with START / END / REPORT lines around each invocation.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from eventpipe.local.auth import LocalCredentials
from eventpipe.local.lambda_environments import EnvironmentPool, ExecutionEnvironment, Outcome
from eventpipe.local.state import open_private, prepare_state_dir

log = logging.getLogger(__name__)

LATEST = "$LATEST"
# Lambda retries a failed async invocation after about one minute, then after about two.
AWS_RETRY_DELAYS_SECONDS = (60.0, 120.0)
AWS_DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
AWS_DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 21_600
# 1 minute of AWS time = 0.5 s locally: the retry schedule keeps its shape and tests stay fast.
DEFAULT_TIME_SCALE = 1 / 120
# Concurrent environments per function unless configured: one per core, at most 4. Locally the emulator
# process serving every API call is the bottleneck (benchmark 5 ran as fast with 2 as with 4 on 2 cores),
# so more workers only cost memory (~70 MB each).
MAX_DEFAULT_CONCURRENCY = 4
# Variables that change how an interpreter or the dynamic loader finds code: a function's configuration
# never passes them to a worker (anyone who could set them would run code as the developer). Lambda
# itself lets a function set some (PYTHONPATH, LD_LIBRARY_PATH are "unreserved" in the Lambda developer
# guide, "Defined runtime environment variables"); local mode deliberately does not.
LOADER_VARIABLE_PREFIXES = ("LD_", "PYTHON", "DYLD_", "GCONV_", "PERL5", "RUBY")
LOADER_VARIABLES = frozenset(
    {
        "PATH",
        "GLIBC_TUNABLES",
        "LOCPATH",
        "NLSPATH",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        "BASH_ENV",
        "ENV",
        "NODE_OPTIONS",
        "NODE_PATH",
        "AWS_LAMBDA_EXEC_WRAPPER",  # a wrapper script Lambda would run: code, not configuration
    }
)
# Where `make setup` builds the functions' own environment (the Makefile's FUNCTIONS_VENV).
FUNCTIONS_VENV = Path(".build") / "functions-venv"
_WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")


class FunctionsEnvironmentMissingError(RuntimeError):
    """The functions' Python environment has not been built."""


def is_loader_variable(name: str) -> bool:
    upper = name.upper()
    return upper in LOADER_VARIABLES or upper.startswith(LOADER_VARIABLE_PREFIXES)


def functions_python(project_root: Path) -> Path:
    """The interpreter of the functions' environment; raises FunctionsEnvironmentMissingError."""
    python = Path(project_root) / FUNCTIONS_VENV / "bin" / "python"
    if not python.exists():
        raise FunctionsEnvironmentMissingError(
            f"the functions' Python environment {python.parent.parent} is missing: run `make setup`"
        )
    return python


_Config = TypeVar("_Config")


def default_concurrency() -> int:
    """Warm environments per function: one per core (at least 2), at most MAX_DEFAULT_CONCURRENCY."""
    return max(2, min(MAX_DEFAULT_CONCURRENCY, os.cpu_count() or 1))


class FunctionNotFoundError(LookupError):
    """The function does not exist in the emulator (Lambda's ResourceNotFoundException)."""


@dataclass(frozen=True)
class InvokeResult:
    """What Lambda's Invoke API (RequestResponse) returns."""

    status: int
    payload: bytes
    function_error: str | None
    request_id: str
    executed_version: str = LATEST


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    arn: str
    handler: str
    runtime: str
    environment: Mapping[str, str]
    timeout: int
    memory_size: int

    @property
    def fingerprint(self) -> str:
        """Changes whenever a setting that shapes the execution environment changes."""
        material = json.dumps(
            [self.handler, self.runtime, dict(self.environment), self.timeout, self.memory_size],
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class AsyncConfig:
    maximum_retry_attempts: int = AWS_DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_seconds: int = AWS_DEFAULT_MAXIMUM_EVENT_AGE_SECONDS
    on_success: str | None = None
    on_failure: str | None = None


def function_name_of(name_or_arn: str) -> str:
    """Accept a name, a full or partial ARN, with or without a `$LATEST` qualifier."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":  # partial ARN: 123456789012:function:name
        return parts[2]
    return parts[0]


# --- async invocations ----------------------------------------------------------------------------


@dataclass
class _AsyncEvent:
    request_id: str
    function_name: str
    payload: Any
    accepted_at: float = field(default_factory=time.monotonic)
    attempts: int = 0


class LambdaRuntime:
    """Runs functions stored in the emulator's Lambda API; see the module docstring."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        account: str,
        project_root: Path,
        log_dir: Path | None = None,
        time_scale: float = DEFAULT_TIME_SCALE,
        max_workers_per_function: int | None = None,
        config_generation: Callable[[], int] | None = None,
        credentials: LocalCredentials,
        python: Path | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.account = account
        self.project_root = Path(project_root).resolve()
        self.python = Path(python) if python else functions_python(self.project_root)
        self.credentials = credentials
        self.log_dir = prepare_state_dir(
            Path(log_dir) if log_dir else self.project_root / ".eventpipe" / "local" / "logs"
        )
        self.time_scale = time_scale
        self._max_workers = max_workers_per_function or default_concurrency()
        self._config_generation = config_generation
        self._config_cache: dict[tuple[str, str], tuple[int, Any]] = {}
        session = boto3.session.Session(region_name=region, **credentials.boto3_kwargs())
        client_config = Config(retries={"max_attempts": 2, "mode": "standard"})
        self._lambda = session.client("lambda", endpoint_url=endpoint_url, config=client_config)
        self._sqs = session.client("sqs", endpoint_url=endpoint_url, config=client_config)
        self._sns = session.client("sns", endpoint_url=endpoint_url, config=client_config)
        self._pools: dict[str, EnvironmentPool] = {}
        self._log_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._timers: list[tuple[float, int, _AsyncEvent]] = []
        self._sequence = itertools.count()
        self._timer_wakeup = threading.Condition(self._lock)
        self._shutting_down = False
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lambda-invoke")
        self._scheduler = threading.Thread(target=self._run_timers, name="lambda-retries", daemon=True)
        self._scheduler.start()

    # --- public API ---------------------------------------------------------------------------

    def invoke_async(self, function_name_or_arn: str, payload: Any) -> str:
        """Accept an Event invocation and return its request id; raises FunctionNotFoundError."""
        name = function_name_of(function_name_or_arn)
        self.function_config(name)
        event = _AsyncEvent(request_id=str(uuid.uuid4()), function_name=name, payload=payload)
        with self._lock:
            if self._shutting_down:
                raise RuntimeError("the Lambda runtime is shut down")
            self._in_flight += 1
        self._executor.submit(self._attempt, event)
        return event.request_id

    def invoke_sync(self, function_name_or_arn: str, payload: Any) -> InvokeResult:
        """A RequestResponse invocation; raises FunctionNotFoundError."""
        with self._lock:
            self._in_flight += 1
        try:
            config = self.function_config(function_name_of(function_name_or_arn))
            return self._invoke(config, str(uuid.uuid4()), payload)
        finally:
            with self._lock:
                self._in_flight -= 1

    def busy(self) -> bool:
        """True while any invocation is queued, running or waiting for a retry."""
        with self._lock:
            return self._in_flight > 0

    def warm_worker_pids(self, function_name_or_arn: str) -> list[int]:
        """Process ids of the function's idle warm environments (for diagnostics and tests)."""
        pool = self._pools.get(function_name_of(function_name_or_arn))
        return pool.pids() if pool else []

    def log_file(self, function_name_or_arn: str) -> Path:
        return self.log_dir / f"{function_name_of(function_name_or_arn)}.log"

    def shutdown(self) -> None:
        """Stop accepting work, drop pending retries, stop every worker process."""
        with self._lock:
            self._shutting_down = True
            dropped = len(self._timers)
            self._in_flight -= dropped
            self._timers.clear()
            self._timer_wakeup.notify_all()
        if dropped:
            log.warning("shutdown dropped %d async invocation(s) waiting for a retry", dropped)
        for pool in list(self._pools.values()):
            pool.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._scheduler.join(timeout=5)

    # --- configuration ------------------------------------------------------------------------

    def function_config(self, name: str) -> FunctionConfig:
        """The function's configuration; raises FunctionNotFoundError."""
        config: FunctionConfig = self._cached("function", name, self._read_function_config)
        return config

    def async_config(self, name: str) -> AsyncConfig:
        """The function's event invoke config (Lambda's defaults when it has none)."""
        config: AsyncConfig = self._cached("async", name, self._read_async_config)
        return config

    def _cached(self, kind: str, name: str, read: Callable[[str], _Config]) -> _Config:
        if self._config_generation is None:
            return read(name)
        # Taken before the read: a change that lands during the read makes the next call read again.
        generation = self._config_generation()
        with self._lock:
            hit = self._config_cache.get((kind, name))
        if hit is not None and hit[0] == generation:
            cached: _Config = hit[1]
            return cached
        value = read(name)  # FunctionNotFoundError is not cached: the function may be created next
        with self._lock:
            self._config_cache[kind, name] = (generation, value)
        return value

    def _read_function_config(self, name: str) -> FunctionConfig:
        try:
            raw = self._lambda.get_function_configuration(FunctionName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise FunctionNotFoundError(f"Function not found: {name}") from exc
            raise
        return FunctionConfig(
            name=raw["FunctionName"],
            arn=raw["FunctionArn"].removesuffix(f":{LATEST}"),
            handler=raw["Handler"],
            runtime=raw.get("Runtime", "python3.14"),
            environment=raw.get("Environment", {}).get("Variables", {}),
            timeout=int(raw.get("Timeout", 3)),
            memory_size=int(raw.get("MemorySize", 128)),
        )

    def _read_async_config(self, name: str) -> AsyncConfig:
        try:
            raw = self._lambda.get_function_event_invoke_config(FunctionName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return AsyncConfig()  # no event invoke config: Lambda's defaults
            raise
        destinations = raw.get("DestinationConfig", {})
        return AsyncConfig(
            maximum_retry_attempts=int(raw.get("MaximumRetryAttempts", AWS_DEFAULT_MAXIMUM_RETRY_ATTEMPTS)),
            maximum_event_age_seconds=int(
                raw.get("MaximumEventAgeInSeconds", AWS_DEFAULT_MAXIMUM_EVENT_AGE_SECONDS)
            ),
            on_success=destinations.get("OnSuccess", {}).get("Destination") or None,
            on_failure=destinations.get("OnFailure", {}).get("Destination") or None,
        )

    def worker_environment(self, config: FunctionConfig) -> dict[str, str]:
        """Lambda's environment for the function, pointed at the emulator (see the module docstring)."""
        defaults = {
            "PATH": f"{self.python.parent}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            # No X-Ray daemon locally: tracing would only log connection warnings.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_XRAY_SDK_ENABLED": "false",
        }
        reserved = {
            "_HANDLER": config.handler,
            "LAMBDA_TASK_ROOT": str(self.project_root),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{config.name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # Never let a worker pick up the host's real AWS profile or credentials.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            **self.credentials.aws_environment(),
        }
        declared = {name: value for name, value in config.environment.items() if not is_loader_variable(name)}
        return {**defaults, **declared, **reserved}

    # --- invoking -----------------------------------------------------------------------------

    def _pool(self, name: str) -> EnvironmentPool:
        with self._lock:
            if name not in self._pools:
                self._pools[name] = EnvironmentPool(self._max_workers)
                self._log_locks[name] = threading.Lock()
            return self._pools[name]

    def _spawn(self, config: FunctionConfig) -> ExecutionEnvironment:
        dropped = sorted(name for name in config.environment if is_loader_variable(name))
        if dropped:
            self._log(
                config.name,
                f"[WARNING] local mode does not pass {', '.join(dropped)} to the function: "
                "variables that change how code is loaded are ignored",
            )
        return ExecutionEnvironment(
            command=[str(self.python), "-I", str(_WORKER_SCRIPT), config.handler],
            handler=config.handler,
            timeout=config.timeout,
            fingerprint=config.fingerprint,
            env=self.worker_environment(config),
            cwd=self.project_root,
            log_file=self.log_file(config.name),
        )

    def _invoke(self, config: FunctionConfig, request_id: str, payload: Any) -> InvokeResult:
        pool = self._pool(config.name)
        worker = pool.acquire(config.fingerprint, lambda: self._spawn(config))
        self._log(config.name, f"START RequestId: {request_id} Version: {LATEST}")
        started = time.monotonic()
        outcome = Outcome(worker_lost=True)
        peak_mb = None
        try:
            outcome = worker.invoke(request_id, payload, config.arn)
            peak_mb = worker.peak_memory_mb()
        finally:
            pool.release(worker, reusable=not outcome.worker_lost)
        duration_ms = (time.monotonic() - started) * 1000
        if outcome.error is not None and outcome.worker_lost:
            # Errors raised by the handler are logged by the worker; environment failures here.
            self._log(config.name, f"{outcome.error.get('errorMessage', '')}")
        self._log(config.name, f"END RequestId: {request_id}")
        self._log(
            config.name,
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Memory Size: {config.memory_size} MB\tMax Memory Used: {peak_mb or '?'} MB",
        )
        if outcome.error is not None:
            error = {"errorMessage": "", "errorType": "Unknown", **outcome.error, "requestId": request_id}
            return InvokeResult(200, json.dumps(error).encode(), "Unhandled", request_id)
        return InvokeResult(200, outcome.result or b"null", None, request_id)

    def _log(self, function_name: str, line: str) -> None:
        self._pool(function_name)  # ensures the lock exists
        with self._log_locks[function_name], open_private(self.log_file(function_name), "ab") as out:
            out.write((line + "\n").encode())

    def _attempt(self, event: _AsyncEvent) -> None:
        retry_scheduled = False
        try:
            retry_scheduled = self._attempt_once(event)
        except Exception:
            log.exception("async event %s of %s failed in the runtime", event.request_id, event.function_name)
        finally:
            if not retry_scheduled:
                self._finish()

    def _attempt_once(self, event: _AsyncEvent) -> bool:
        """One delivery attempt; True when a retry was scheduled (the event is still in flight)."""
        try:
            config = self.function_config(event.function_name)
        except FunctionNotFoundError:
            log.warning(
                "dropping async event %s: function %s was deleted", event.request_id, event.function_name
            )
            return False
        settings = self.async_config(event.function_name)
        max_age = settings.maximum_event_age_seconds * self.time_scale
        if event.attempts and time.monotonic() - event.accepted_at > max_age:
            self._deliver_failure(config, settings, event, "EventAgeExceeded", None)
            return False
        result = self._invoke(config, event.request_id, event.payload)
        event.attempts += 1
        if result.function_error is None:
            if settings.on_success:
                self._send_record(settings.on_success, self._record(config, event, "Success", result))
            return False
        if event.attempts <= settings.maximum_retry_attempts:
            delays = AWS_RETRY_DELAYS_SECONDS
            return self._retry_later(event, delays[min(event.attempts, len(delays)) - 1] * self.time_scale)
        self._deliver_failure(config, settings, event, "RetriesExhausted", result)
        return False

    def _deliver_failure(
        self,
        config: FunctionConfig,
        settings: AsyncConfig,
        event: _AsyncEvent,
        condition: str,
        result: InvokeResult | None,
    ) -> None:
        if settings.on_failure:
            self._send_record(settings.on_failure, self._record(config, event, condition, result))
        else:
            log.warning("async event %s of %s discarded (%s)", event.request_id, config.name, condition)

    def _record(
        self, config: FunctionConfig, event: _AsyncEvent, condition: str, result: InvokeResult | None
    ) -> dict[str, Any]:
        """Lambda's invocation record, as sent to an async destination."""
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": f"{config.arn}:{LATEST}",
                "condition": condition,
                "approximateInvokeCount": event.attempts,
            },
            "requestPayload": event.payload,
        }
        if result is not None:
            response_context: dict[str, Any] = {"statusCode": result.status, "executedVersion": LATEST}
            if result.function_error:
                response_context["functionError"] = result.function_error
            record["responseContext"] = response_context
            record["responsePayload"] = json.loads(result.payload)
        return record

    def _send_record(self, destination_arn: str, record: dict[str, Any]) -> None:
        body = json.dumps(record)
        service = destination_arn.split(":")[2]
        if service == "sqs":
            self._sqs.send_message(QueueUrl=self._queue_url(destination_arn), MessageBody=body)
        elif service == "sns":
            self._sns.publish(TopicArn=destination_arn, Message=body)
        else:
            log.warning("destination %s is not supported locally; record dropped", destination_arn)

    def _queue_url(self, queue_arn: str) -> str:
        _, _, _, _, account, name = queue_arn.split(":", 5)
        response = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        url: str = response["QueueUrl"]
        return url

    # --- retry timers -------------------------------------------------------------------------

    def _retry_later(self, event: _AsyncEvent, delay: float) -> bool:
        with self._lock:
            if self._shutting_down:
                return False
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._sequence), event))
            self._timer_wakeup.notify()
            return True

    def _run_timers(self) -> None:
        with self._lock:
            while not self._shutting_down:
                if not self._timers:
                    self._timer_wakeup.wait()
                    continue
                due, _, event = self._timers[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._timer_wakeup.wait(timeout=wait)
                    continue
                heapq.heappop(self._timers)
                self._executor.submit(self._attempt, event)

    def _finish(self) -> None:
        with self._lock:
            self._in_flight -= 1


__all__ = [
    "AsyncConfig",
    "FunctionConfig",
    "FunctionNotFoundError",
    "FunctionsEnvironmentMissingError",
    "InvokeResult",
    "LambdaRuntime",
    "default_concurrency",
    "function_name_of",
]
