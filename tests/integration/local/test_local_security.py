"""Local mode is private to the developer who started it, and its functions run like Lambda's.

Against the real emulator (the session fixture): no CORS, only requests signed with the credentials
generated for the run, no loader variable reaches a worker even through UpdateFunctionConfiguration,
and workers import only what functions/requirements.txt and the Lambda runtime provide."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from eventpipe.local.auth import LocalCredentials, sign_headers
from eventpipe.local.emulator import Emulator

PROBES = "tests.integration.local.lambda_probes"


def _http(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


# --- CORS ----------------------------------------------------------------------------------------


def test_a_cors_preflight_from_a_web_page_is_refused(emulator: Emulator, outputs: dict[str, str]) -> None:
    preflight = urllib.request.Request(
        f"{emulator.endpoint}/{outputs['BucketName']}/incoming/x.csv",
        method="OPTIONS",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"},
    )

    status, headers, _ = _http(preflight)

    assert status == 403
    assert not [name for name in headers if name.startswith("access-control-")]


def test_a_signed_cross_origin_request_gets_no_cors_headers(emulator: Emulator) -> None:
    s3 = emulator.client("s3")
    s3.meta.events.register(
        "before-sign.s3.ListBuckets",
        lambda request, **_: request.headers.__setitem__("Origin", "https://evil.example"),
    )

    response = s3.list_buckets()

    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert not [name for name in headers if name.lower().startswith("access-control-")]


# --- signatures ----------------------------------------------------------------------------------


def test_an_unsigned_request_is_refused(emulator: Emulator) -> None:
    status, _, body = _http(urllib.request.Request(f"{emulator.endpoint}/moto-api/data.json"))
    unsigned = boto3.client(
        "sqs",
        endpoint_url=emulator.endpoint,
        region_name=emulator.region,
        config=Config(signature_version=UNSIGNED),
    )

    assert (status, b"MissingAuthenticationToken" in body) == (403, True)
    assert _error_code(unsigned.list_queues) == "MissingAuthenticationToken"


def test_a_request_signed_with_other_credentials_is_refused(emulator: Emulator) -> None:
    other = LocalCredentials.generate()
    same_key_wrong_secret = LocalCredentials(emulator.credentials.access_key_id, other.secret_access_key)

    def client(service: str, credentials: LocalCredentials) -> Any:
        return boto3.client(
            service, endpoint_url=emulator.endpoint, region_name=emulator.region, **credentials.boto3_kwargs()
        )

    assert _error_code(client("s3", other).list_buckets) == "InvalidClientTokenId"
    assert _error_code(client("lambda", other).list_functions) == "InvalidClientTokenId"
    assert _error_code(client("sns", same_key_wrong_secret).list_topics) == "SignatureDoesNotMatch"
    assert _error_code(client("dynamodb", same_key_wrong_secret).list_tables) == "SignatureDoesNotMatch"


def test_the_generated_credentials_work_for_every_api_the_stack_uses(
    emulator: Emulator, outputs: dict[str, str]
) -> None:
    """The control: the same calls succeed with the run's credentials (as printed by `local start`)."""
    s3 = emulator.client("s3")
    key = f"security/{uuid.uuid4().hex} with space+plus.txt"
    s3.put_object(Bucket=outputs["BucketName"], Key=key, Body=b"x", Metadata={"under_score": "kept"})

    head = s3.head_object(Bucket=outputs["BucketName"], Key=key)

    assert head["Metadata"] == {"under_score": "kept"}
    assert emulator.client("sns").list_topics()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert emulator.client("dynamodb").describe_table(TableName=outputs["TableName"])["Table"]
    s3.delete_object(Bucket=outputs["BucketName"], Key=key)


def test_the_control_endpoint_requires_the_signature_too(emulator: Emulator) -> None:
    url = f"{emulator.state['control']}/status"
    other = LocalCredentials.generate()

    unsigned, _, _ = _http(urllib.request.Request(url))
    foreign, _, _ = _http(
        urllib.request.Request(url, headers=sign_headers(method="GET", url=url, credentials=other))
    )
    own, _, body = _http(
        urllib.request.Request(
            url, headers=sign_headers(method="GET", url=url, credentials=emulator.credentials)
        )
    )

    assert (unsigned, foreign, own) == (403, 403, 200)
    assert "pending_deliveries" in json.loads(body)


# --- worker environments -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe(emulator: Emulator) -> Iterator[Callable[..., str]]:
    """Create a probe function in the emulator (handler from lambda_probes.py); returns its name."""
    lambda_client, iam = emulator.client("lambda"), emulator.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=f"sec-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.txt", "code is read from the project root")
    created: list[str] = []

    def make(handler: str, env: dict[str, str] | None = None) -> str:
        name = f"sec-{uuid.uuid4().hex[:10]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.14",
            Role=role["Role"]["Arn"],
            Handler=f"{PROBES}.{handler}",
            Code={"ZipFile": buffer.getvalue()},
            Timeout=30,
            Environment={"Variables": env or {}},
        )
        created.append(name)
        return name

    yield make
    for name in created:
        lambda_client.delete_function(FunctionName=name)


def _invoke(emulator: Emulator, name: str) -> tuple[str | None, Any]:
    response = emulator.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_loader_variables_set_through_update_function_configuration_never_reach_a_worker(
    emulator: Emulator, probe: Callable[..., str], tmp_path: Path
) -> None:
    # Given a directory whose sitecustomize.py would leave a mark if Python ever loaded it
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "code-ran"
    (planted / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    name = probe("environment", {"MODE": "before"})
    # When someone with API access adds loader variables to the function's configuration
    injected = {
        "MODE": "after",
        "LD_PRELOAD": str(planted / "evil.so"),
        "LD_LIBRARY_PATH": str(planted),
        "PYTHONPATH": str(planted),
        "PYTHONSTARTUP": str(planted / "sitecustomize.py"),
        "PYTHONHOME": str(planted),
        "PYTHONINSPECT": "1",
        "PATH": str(planted),
    }
    emulator.client("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": injected}
    )
    error, seen = _invoke(emulator, name)

    # Then the worker runs with the new configuration, but without any of them
    assert error is None, seen
    assert seen["env"]["MODE"] == "after"
    assert not {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONINSPECT",
    } & set(seen["env"])
    assert str(planted) not in seen["env"]["PATH"]
    assert str(planted) not in seen["sys_path"]
    assert not marker.exists()
    assert seen["env"]["AWS_ACCESS_KEY_ID"] == emulator.credentials.access_key_id


def test_workers_run_on_the_functions_own_environment(emulator: Emulator, probe: Callable[..., str]) -> None:
    error, seen = _invoke(emulator, probe("environment"))

    assert error is None, seen
    assert "/.build/functions-venv/" in seen["executable"]
    assert "isolated=1" in seen["flags"]
    assert not [entry for entry in seen["sys_path"] if "/.venv/" in entry]  # nothing of the dev venv


def test_a_function_importing_a_package_missing_from_requirements_fails_locally(
    emulator: Emulator, probe: Callable[..., str]
) -> None:
    # typer is installed in the dev environment, but functions/requirements.txt does not list it.
    assert (
        "typer"
        not in (Path(__file__).resolve().parents[3] / "functions" / "requirements.txt").read_text().lower()
    )

    error, payload = _invoke(emulator, probe("import_dev_only"))
    provided_error, provided = _invoke(emulator, probe("import_runtime_packages"))

    assert error == "Unhandled"
    assert payload["errorType"] == "ModuleNotFoundError"
    assert "typer" in payload["errorMessage"]
    assert provided_error is None, provided  # the control: boto3 and powertools are there
