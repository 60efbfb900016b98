"""`LambdaRuntime`: the local Lambda service's invoke side, composed from this package's parts.

It reads configurations (`config`), runs invocations in warm environments (`invoker`, `sandbox`,
`environments`, `worker`), and schedules async retries on local mode's one scheduler (`clock`), sending
destination records through the one sender (`senders`) (`async_invocations`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from eventpipe.local.auth import LocalCredentials
from eventpipe.local.clock import DEFAULT_TIME_SCALE, LocalClock, Scheduler
from eventpipe.local.lambda_runtime.async_invocations import AsyncAttempts, AsyncEvent
from eventpipe.local.lambda_runtime.config import (
    AsyncConfig,
    ConfigReader,
    FunctionConfig,
    function_name_of,
)
from eventpipe.local.lambda_runtime.invoker import Invoker, InvokeResult, default_concurrency
from eventpipe.local.lambda_runtime.sandbox import functions_python, worker_command, worker_environment
from eventpipe.local.senders import AwsSenders
from eventpipe.local.state import STATE_DIR, prepare_state_dir

log = logging.getLogger("eventpipe.local.lambda_runtime")


class LambdaRuntime:
    """Runs functions stored in the emulator's Lambda API (see the package docstring)."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        account: str,
        project_root: Path,
        credentials: LocalCredentials,
        log_dir: Path | None = None,
        time_scale: float = DEFAULT_TIME_SCALE,
        max_workers_per_function: int | None = None,
        config_generation: Callable[[], int] | None = None,
        python: Path | None = None,
        senders: AwsSenders | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.account = account
        self.project_root = Path(project_root).resolve()
        self.python = Path(python) if python else functions_python(self.project_root)
        self.credentials = credentials
        self.log_dir = prepare_state_dir(Path(log_dir) if log_dir else self.project_root / STATE_DIR / "logs")
        self.clock = LocalClock(time_scale)
        session = boto3.session.Session(region_name=region, **credentials.boto3_kwargs())
        client_config = Config(retries={"max_attempts": 2, "mode": "standard"})
        lambda_client = session.client("lambda", endpoint_url=endpoint_url, config=client_config)
        self._configs = ConfigReader(lambda_client, config_generation)
        self._invoker = Invoker(
            log_dir=self.log_dir,
            max_workers_per_function=max_workers_per_function or default_concurrency(),
            command=partial(worker_command, self.python),
            environment=self.worker_environment,
            cwd=self.project_root,
        )
        sender = senders or AwsSenders(
            endpoint_url=endpoint_url, region=region, credentials=credentials, attempts=2
        )
        self._attempts = AsyncAttempts(
            clock=self.clock,
            function_config=self.function_config,
            async_config=self.async_config,
            invoke=self._invoker.invoke,
            retry_later=self._retry_later,
            sender=sender,
        )
        self._lock = threading.Lock()
        self._in_flight = 0
        self._shutting_down = False
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lambda-invoke")
        self._retries = Scheduler(name="lambda-retries")

    # --- public API ---------------------------------------------------------------------------

    def invoke_async(self, function_name_or_arn: str, payload: Any) -> str:
        """Accept an Event invocation and return its request id; raises FunctionNotFoundError."""
        name = function_name_of(function_name_or_arn)
        self.function_config(name)
        event = AsyncEvent(request_id=str(uuid.uuid4()), function_name=name, payload=payload)
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
            return self._invoker.invoke(config, str(uuid.uuid4()), payload)
        finally:
            with self._lock:
                self._in_flight -= 1

    def busy(self) -> bool:
        """True while any invocation is queued, running or waiting for a retry."""
        with self._lock:
            return self._in_flight > 0

    @property
    def max_concurrency_per_function(self) -> int:
        """How many invocations of one function run at once (its warm environments)."""
        return self._invoker.max_workers_per_function

    def warm_worker_pids(self, function_name_or_arn: str) -> list[int]:
        """Process ids of the function's idle warm environments (for diagnostics and tests)."""
        return self._invoker.warm_worker_pids(function_name_of(function_name_or_arn))

    def log_file(self, function_name_or_arn: str) -> Path:
        return self._invoker.log_file(function_name_of(function_name_or_arn))

    def function_config(self, name: str) -> FunctionConfig:
        """The function's configuration; raises FunctionNotFoundError."""
        return self._configs.function_config(name)

    def async_config(self, name: str) -> AsyncConfig:
        """The function's event invoke config (Lambda's defaults when it has none)."""
        return self._configs.async_config(name)

    def worker_environment(self, config: FunctionConfig) -> dict[str, str]:
        """Lambda's environment for the function, pointed at the emulator (see `sandbox`)."""
        return worker_environment(
            config,
            python=self.python,
            project_root=self.project_root,
            region=self.region,
            endpoint_url=self.endpoint_url,
            credentials=self.credentials,
        )

    def shutdown(self) -> None:
        """Stop accepting work, drop pending retries, stop every worker process."""
        with self._lock:
            self._shutting_down = True
        dropped = self._retries.shutdown()
        with self._lock:
            self._in_flight -= dropped
        if dropped:
            log.warning("shutdown dropped %d async invocation(s) waiting for a retry", dropped)
        self._invoker.close()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # --- async attempts -----------------------------------------------------------------------

    def _attempt(self, event: AsyncEvent) -> None:
        retry_scheduled = False
        try:
            retry_scheduled = self._attempts.attempt_once(event)
        except Exception:
            log.exception("async event %s of %s failed in the runtime", event.request_id, event.function_name)
        finally:
            if not retry_scheduled:
                with self._lock:
                    self._in_flight -= 1

    def _retry_later(self, event: AsyncEvent, delay: float) -> bool:
        with self._lock:
            if self._shutting_down:
                return False
        return self._retries.call_later(delay, partial(self._resubmit, event))

    def _resubmit(self, event: AsyncEvent) -> None:
        try:
            self._executor.submit(self._attempt, event)
        except RuntimeError:  # the executor shut down between the timer and now: the event is dropped
            with self._lock:
                self._in_flight -= 1
