"""The local Lambda runtime reproduces Lambda's execution semantics for real function code.

These tests run the runtime against its own in-process moto server (the Lambda, SQS and IAM APIs it
reads and writes) with the probe handlers of `lambda_probes.py`, so they need neither the emulator nor
the project's functions. Each test name states the AWS behaviour it reproduces.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from eventpipe.local.auth import LocalCredentials
from eventpipe.local.lambda_runtime import FunctionNotFoundError, LambdaRuntime, function_name_of

REGION = "us-east-1"
ACCOUNT = "123456789012"

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PROBES = "tests.integration.local.lambda_probes"
# The module's own moto server checks no signature; the runtime passes these to its workers.
CREDENTIALS = LocalCredentials.generate()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def clients(endpoint: str) -> dict[str, Any]:
    session = boto3.session.Session(region_name=REGION, **CREDENTIALS.boto3_kwargs())
    return {name: session.client(name, endpoint_url=endpoint) for name in ("lambda", "sqs", "iam")}


@pytest.fixture(scope="module")
def role_arn(clients: dict[str, Any]) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = clients["iam"].create_role(
        RoleName=f"fn-role-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(role["Role"]["Arn"])


@pytest.fixture(scope="module")
def runtime(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaRuntime]:
    runtime = LambdaRuntime(
        endpoint_url=endpoint,
        region=REGION,
        account=ACCOUNT,
        project_root=PROJECT_ROOT,
        log_dir=tmp_path_factory.mktemp("logs"),
        credentials=CREDENTIALS,
    )
    yield runtime
    runtime.shutdown()


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.txt", "code is read from the project root")
    return buffer.getvalue()


Deploy = Callable[..., str]


@pytest.fixture
def deploy(clients: dict[str, Any], role_arn: str) -> Deploy:
    """Create a uniquely named function (+ event invoke config when retries are given)."""

    def _deploy(
        handler: str,
        *,
        env: dict[str, str] | None = None,
        timeout: int = 30,
        retries: int | None = None,
        on_failure: str | None = None,
        on_success: str | None = None,
    ) -> str:
        name = f"fn-{uuid.uuid4().hex[:10]}"
        clients["lambda"].create_function(
            FunctionName=name,
            Runtime="python3.14",
            Role=role_arn,
            Handler=f"{PROBES}.{handler}",
            Code={"ZipFile": _dummy_zip()},
            Timeout=timeout,
            MemorySize=256,
            Environment={"Variables": env or {}},
        )
        if retries is not None:
            destinations: dict[str, Any] = {}
            if on_failure:
                destinations["OnFailure"] = {"Destination": on_failure}
            if on_success:
                destinations["OnSuccess"] = {"Destination": on_success}
            clients["lambda"].put_function_event_invoke_config(
                FunctionName=name,
                MaximumRetryAttempts=retries,
                MaximumEventAgeInSeconds=3600,
                DestinationConfig=destinations,
            )
        return name

    return _deploy


@pytest.fixture
def queue(clients: dict[str, Any]) -> tuple[str, str]:
    """A fresh SQS queue: (url, arn)."""
    url = clients["sqs"].create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    arn = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def _payload(result: Any) -> Any:
    return json.loads(result.payload)


def _wait_for_messages(sqs: Any, url: str, count: int, deadline_s: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + deadline_s
    messages: list[dict[str, Any]] = []
    while len(messages) < count and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        messages.extend(response.get("Messages", []))
    return messages


def _wait_idle(runtime: LambdaRuntime, deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while runtime.busy():
        assert time.monotonic() < deadline, "the runtime did not settle before the deadline"
        time.sleep(0.05)


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "my-fn",
        "my-fn:$LATEST",
        "123456789012:function:my-fn",
        "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
        "arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST",
    ],
)
def test_a_function_is_addressed_by_name_or_any_arn_form(reference: str) -> None:
    assert function_name_of(reference) == "my-fn"


# --- synchronous invocations -----------------------------------------------------------------------


def test_sync_invoke_runs_the_handler_with_the_function_environment_and_a_context(
    runtime: LambdaRuntime, deploy: Deploy, endpoint: str
) -> None:
    name = deploy("echo", env={"MODE": "normal"}, timeout=30)

    result = runtime.invoke_sync(name, {"hello": "world"})

    assert result.status == 200
    assert result.function_error is None
    body = _payload(result)
    assert body["event"] == {"hello": "world"}
    assert body["request_id"] == result.request_id
    assert body["function_name"] == name
    assert body["arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert body["memory"] == 256
    assert 0 < body["remaining_ms"] <= 30_000
    assert body["env"] == {
        "MODE": "normal",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS.access_key_id,
        "AWS_CONFIG_FILE": os.devnull,
        "_HANDLER": f"{PROBES}.echo",
    }


def test_an_execution_environment_is_reused_between_invocations(
    runtime: LambdaRuntime, deploy: Deploy
) -> None:
    name = deploy("echo")

    first = _payload(runtime.invoke_sync(name, {}))
    second = _payload(runtime.invoke_sync(name, {}))

    assert first["pid"] == second["pid"]
    assert runtime.warm_worker_pids(name) == [first["pid"]]


def test_update_function_configuration_takes_effect_in_a_new_environment(
    runtime: LambdaRuntime, deploy: Deploy, clients: dict[str, Any]
) -> None:
    name = deploy("echo", env={"MODE": "before"})
    before = _payload(runtime.invoke_sync(name, {}))

    clients["lambda"].update_function_configuration(
        FunctionName=name, Environment={"Variables": {"MODE": "after"}}
    )
    after = _payload(runtime.invoke_sync(name, {}))

    assert (before["env"]["MODE"], after["env"]["MODE"]) == ("before", "after")
    assert after["pid"] != before["pid"]


def test_a_handler_exception_is_an_unhandled_function_error_with_the_runtime_payload(
    runtime: LambdaRuntime, deploy: Deploy, tmp_path: Path
) -> None:
    name = deploy("record_attempt", env={"MODE": "broken", "ATTEMPTS_FILE": str(tmp_path / "n")})

    result = runtime.invoke_sync(name, {"n": 7})

    assert result.status == 200
    assert result.function_error == "Unhandled"
    error = _payload(result)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "table missing: 7"
    assert error["requestId"] == result.request_id
    assert any("record_attempt" in frame for frame in error["stackTrace"])


def test_the_configured_timeout_is_enforced_and_the_environment_replaced(
    runtime: LambdaRuntime, deploy: Deploy
) -> None:
    name = deploy("sleep", timeout=1)
    warm = _payload(runtime.invoke_sync(name, {"seconds": 0}))

    timed_out = runtime.invoke_sync(name, {"seconds": 30})
    recovered = _payload(runtime.invoke_sync(name, {"seconds": 0}))

    assert timed_out.function_error == "Unhandled"
    error = _payload(timed_out)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    assert timed_out.request_id in error["errorMessage"]
    assert recovered["pid"] != warm["pid"]


def test_a_crashing_runtime_reports_an_exit_error(runtime: LambdaRuntime, deploy: Deploy) -> None:
    name = deploy("crash")

    result = runtime.invoke_sync(name, {})

    assert result.function_error == "Unhandled"
    error = _payload(result)
    assert error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]


def test_a_handler_that_cannot_be_imported_fails_with_import_module_error(
    runtime: LambdaRuntime, deploy: Deploy, clients: dict[str, Any]
) -> None:
    name = deploy("echo")
    clients["lambda"].update_function_configuration(
        FunctionName=name, Handler="tests.integration.no_such_module.handler"
    )

    result = runtime.invoke_sync(name, {})

    assert result.function_error == "Unhandled"
    assert _payload(result)["errorType"] == "Runtime.ImportModuleError"


def test_a_result_that_is_not_json_fails_with_marshal_error(runtime: LambdaRuntime, deploy: Deploy) -> None:
    result = runtime.invoke_sync(deploy("unserializable"), {})

    assert result.function_error == "Unhandled"
    assert _payload(result)["errorType"] == "Runtime.MarshalError"


def test_an_unknown_function_is_not_found(runtime: LambdaRuntime) -> None:
    with pytest.raises(FunctionNotFoundError):
        runtime.invoke_sync("no-such-function", {})
    with pytest.raises(FunctionNotFoundError):
        runtime.invoke_async("no-such-function", {})


def test_function_output_and_invocation_lines_go_to_the_function_log(
    runtime: LambdaRuntime, deploy: Deploy
) -> None:
    name = deploy("echo")

    result = runtime.invoke_sync(name, {"marker": "log-me"})

    log_text = runtime.log_file(name).read_text()
    assert 'echo called {"marker": "log-me"}' in log_text
    for line in ("START RequestId: ", "END RequestId: ", "REPORT RequestId: "):
        assert f"{line}{result.request_id}" in log_text


# --- asynchronous invocations ----------------------------------------------------------------------


def test_async_errors_are_retried_then_the_failure_destination_gets_lambdas_record(
    runtime: LambdaRuntime, deploy: Deploy, queue: tuple[str, str], clients: dict[str, Any], tmp_path: Path
) -> None:
    attempts_file = tmp_path / "attempts"
    queue_url, queue_arn = queue
    name = deploy(
        "record_attempt",
        env={"MODE": "broken", "ATTEMPTS_FILE": str(attempts_file)},
        retries=2,
        on_failure=queue_arn,
    )

    request_id = runtime.invoke_async(name, {"n": 1})
    _wait_idle(runtime)

    messages = _wait_for_messages(clients["sqs"], queue_url, 1)
    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "table missing: 1"
    assert record["responsePayload"]["stackTrace"]
    # Lambda retries the same request: one first attempt + 2 retries, all with the same request id.
    assert attempts_file.read_text().splitlines() == [request_id] * 3


def test_async_retries_follow_the_event_invoke_config(
    runtime: LambdaRuntime, deploy: Deploy, queue: tuple[str, str], clients: dict[str, Any], tmp_path: Path
) -> None:
    attempts_file = tmp_path / "attempts"
    queue_url, queue_arn = queue
    name = deploy(
        "record_attempt",
        env={"MODE": "broken", "ATTEMPTS_FILE": str(attempts_file)},
        retries=0,
        on_failure=queue_arn,
    )

    runtime.invoke_async(name, {"n": 2})
    _wait_idle(runtime)

    record = json.loads(_wait_for_messages(clients["sqs"], queue_url, 1)[0]["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert len(attempts_file.read_text().splitlines()) == 1


def test_a_fault_fixed_before_the_retry_succeeds_without_a_failure_record(
    runtime: LambdaRuntime, deploy: Deploy, queue: tuple[str, str], clients: dict[str, Any], tmp_path: Path
) -> None:
    """UpdateFunctionConfiguration between attempts: the retry runs with the restored settings."""
    attempts_file = tmp_path / "attempts"
    queue_url, queue_arn = queue
    name = deploy(
        "record_attempt",
        env={"MODE": "broken", "ATTEMPTS_FILE": str(attempts_file)},
        retries=2,
        on_failure=queue_arn,
    )
    # Slow the retry schedule down so the fix surely lands between the first attempt and the retry.
    slow = LambdaRuntime(
        endpoint_url=runtime.endpoint_url,
        region=REGION,
        account=ACCOUNT,
        project_root=runtime.project_root,
        log_dir=runtime.log_dir,
        time_scale=1 / 20,
        credentials=CREDENTIALS,
    )
    try:
        slow.invoke_async(name, {"n": 3})
        deadline = time.monotonic() + 20
        while not attempts_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        clients["lambda"].update_function_configuration(
            FunctionName=name,
            Environment={"Variables": {"MODE": "fixed", "ATTEMPTS_FILE": str(attempts_file)}},
        )
        _wait_idle(slow, deadline_s=30)
    finally:
        slow.shutdown()

    assert len(attempts_file.read_text().splitlines()) == 2
    assert clients["sqs"].receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []


def test_async_success_goes_to_the_on_success_destination(
    runtime: LambdaRuntime, deploy: Deploy, queue: tuple[str, str], clients: dict[str, Any]
) -> None:
    queue_url, queue_arn = queue
    name = deploy("sleep", retries=2, on_success=queue_arn)

    request_id = runtime.invoke_async(name, {"seconds": 0})

    record = json.loads(_wait_for_messages(clients["sqs"], queue_url, 1)[0]["Body"])
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"]["slept"] == 0


def test_busy_while_an_async_invocation_runs_and_idle_after(runtime: LambdaRuntime, deploy: Deploy) -> None:
    name = deploy("sleep")

    runtime.invoke_async(name, {"seconds": 1})

    assert runtime.busy()
    _wait_idle(runtime)
    assert not runtime.busy()


def test_shutdown_stops_every_worker_process(endpoint: str, deploy: Deploy, tmp_path: Path) -> None:
    own = LambdaRuntime(
        endpoint_url=endpoint,
        region=REGION,
        account=ACCOUNT,
        project_root=PROJECT_ROOT,
        log_dir=tmp_path,
        credentials=CREDENTIALS,
    )
    name = deploy("echo")
    pid = _payload(own.invoke_sync(name, {}))["pid"]

    own.shutdown()

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- through the emulator's Lambda API (the Invoke patch H5 hands calls to the runtime) -----


@pytest.fixture(scope="module")
def emulator_deploy(emulator: Any) -> Callable[..., str]:
    """Create a probe function in the emulator; returns its name."""
    lambda_client, iam = emulator.client("lambda"), emulator.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(
        RoleName=f"probe-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust)
    )

    def _deploy(handler: str, *, env: dict[str, str] | None = None, timeout: int = 30) -> str:
        name = f"probe-{uuid.uuid4().hex[:10]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.14",
            Role=role["Role"]["Arn"],
            Handler=f"{PROBES}.{handler}",
            Code={"ZipFile": _dummy_zip()},
            Timeout=timeout,
            Environment={"Variables": env or {}},
        )
        return name

    return _deploy


def _invoke(lambda_client: Any, name: str, payload: Any) -> tuple[dict[str, Any], Any]:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return response, json.loads(response["Payload"].read())


@pytest.mark.integration
def test_emulator_invoke_api_runs_the_function_in_a_warm_environment(
    emulator: Any, emulator_deploy: Callable[..., str]
) -> None:
    lambda_client = emulator.client("lambda")
    name = emulator_deploy("echo", env={"MODE": "warm"})

    first_response, first = _invoke(lambda_client, name, {"call": 1})
    _, second = _invoke(lambda_client, name, {"call": 2})

    assert first_response["StatusCode"] == 200
    assert "FunctionError" not in first_response
    assert (first["event"], second["event"]) == ({"call": 1}, {"call": 2})
    assert first["pid"] == second["pid"]
    assert first["env"]["AWS_ENDPOINT_URL"] == emulator.endpoint
    assert first["env"]["MODE"] == "warm"


@pytest.mark.integration
def test_emulator_invoke_api_applies_a_configuration_update(
    emulator: Any, emulator_deploy: Callable[..., str]
) -> None:
    lambda_client = emulator.client("lambda")
    name = emulator_deploy("echo", env={"MODE": "before"})
    _, before = _invoke(lambda_client, name, {})

    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"MODE": "after"}}
    )
    _, after = _invoke(lambda_client, name, {})

    assert (before["env"]["MODE"], after["env"]["MODE"]) == ("before", "after")
    assert before["pid"] != after["pid"]


@pytest.mark.integration
def test_emulator_invoke_api_reports_a_timeout_like_lambda(
    emulator: Any, emulator_deploy: Callable[..., str]
) -> None:
    lambda_client = emulator.client("lambda")
    name = emulator_deploy("sleep", timeout=1)

    response, error = _invoke(lambda_client, name, {"seconds": 30})

    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]


@pytest.mark.integration
def test_emulator_event_invocations_are_retried_then_recorded_in_the_failure_destination(
    emulator: Any, emulator_deploy: Callable[..., str], tmp_path: Path
) -> None:
    lambda_client, sqs = emulator.client("lambda"), emulator.client("sqs")
    attempts_file = tmp_path / "attempts"
    name = emulator_deploy("record_attempt", env={"MODE": "broken", "ATTEMPTS_FILE": str(attempts_file)})
    queue_url = sqs.create_queue(QueueName=f"failures-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    lambda_client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": queue_arn}}
    )

    response = lambda_client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"n": 5}')

    assert response["StatusCode"] == 202
    record = json.loads(_wait_for_messages(sqs, queue_url, 1)[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == {"n": 5}
    assert record["responsePayload"]["errorMessage"] == "table missing: 5"
    assert attempts_file.read_text().splitlines() == [record["requestContext"]["requestId"]] * 2


def test_with_a_config_generation_a_configuration_read_is_reused_until_the_counter_moves(
    endpoint: str, deploy: Deploy, clients: dict[str, Any], tmp_path: Path
) -> None:
    """The emulator's hooks move the counter on every Lambda configuration write (moto_patches H11); here the
    test moves it, to show that the runtime trusts it: no move, no re-read."""
    generation = 0
    cached = LambdaRuntime(
        endpoint_url=endpoint,
        region=REGION,
        account=ACCOUNT,
        project_root=PROJECT_ROOT,
        log_dir=tmp_path,
        config_generation=lambda: generation,
        credentials=CREDENTIALS,
    )
    try:
        with pytest.raises(FunctionNotFoundError):  # a miss is not cached: the function may come next
            cached.invoke_sync("fn-created-later", {})
        name = deploy("echo", env={"MODE": "before"})
        before = _payload(cached.invoke_sync(name, {}))
        clients["lambda"].update_function_configuration(
            FunctionName=name, Environment={"Variables": {"MODE": "after"}}
        )
        unannounced = _payload(cached.invoke_sync(name, {}))
        generation += 1
        announced = _payload(cached.invoke_sync(name, {}))
    finally:
        cached.shutdown()

    assert (before["env"]["MODE"], unannounced["env"]["MODE"], announced["env"]["MODE"]) == (
        "before",
        "before",
        "after",
    )
    assert unannounced["pid"] == before["pid"]
    assert announced["pid"] != before["pid"]
