"""Local code reload: an edit under functions/ or schemas/ is run by the next invocation.

A warm worker keeps the modules it imported; the runtime's environment fingerprint covers the code, so
the edit retires the warm worker and the function's log says why. The runtime runs against its own
moto server and a throwaway project root holding one small handler.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from eventpipe.local.auth import LocalCredentials
from eventpipe.local.lambda_runtime import LambdaRuntime
from eventpipe.local.lambda_runtime.sandbox import functions_python

REGION = "us-east-1"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
CREDENTIALS = LocalCredentials.generate()
HANDLER = """
import json, os
from pathlib import Path

def handler(event, context):
    schema = (Path(__file__).resolve().parents[1] / "schemas" / "probe.json").read_text()
    return {{"version": {version!r}, "schema": json.loads(schema), "pid": os.getpid()}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "__init__.py").write_text("")
    (tmp_path / "functions" / "probe.py").write_text(HANDLER.format(version="one"))
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "probe.json").write_text('{"title": "first"}')
    return tmp_path


@pytest.fixture
def function(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LambdaRuntime, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    session = boto3.session.Session(region_name=REGION, **CREDENTIALS.boto3_kwargs())
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
    role = session.client("iam", endpoint_url=endpoint).create_role(
        RoleName=f"reload-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust)
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as written:
        written.writestr("placeholder.txt", "code is read from the project root")
    name = f"reload-{uuid.uuid4().hex[:8]}"
    session.client("lambda", endpoint_url=endpoint).create_function(
        FunctionName=name,
        Runtime="python3.14",
        Role=role["Role"]["Arn"],
        Handler="functions.probe.handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=30,
    )
    runtime = LambdaRuntime(
        endpoint_url=endpoint,
        region=REGION,
        account="123456789012",
        project_root=project,
        python=functions_python(PROJECT_ROOT),
        log_dir=tmp_path_factory.mktemp("logs"),
        credentials=CREDENTIALS,
        max_workers_per_function=1,
    )
    try:
        yield runtime, name
    finally:
        runtime.shutdown()
        server.stop()


def _invoke(runtime: LambdaRuntime, name: str) -> dict[str, Any]:
    result = runtime.invoke_sync(name, {})
    assert result.function_error is None, result.payload
    answer: dict[str, Any] = json.loads(result.payload)
    return answer


def test_a_handler_edit_is_run_by_the_next_invocation_in_a_new_worker(
    project: Path, function: tuple[LambdaRuntime, str]
) -> None:
    runtime, name = function
    first = _invoke(runtime, name)
    assert _invoke(runtime, name)["pid"] == first["pid"]  # warm while nothing changed

    (project / "functions" / "probe.py").write_text(HANDLER.format(version="second edit"))
    edited = _invoke(runtime, name)

    assert edited["version"] == "second edit"
    assert edited["pid"] != first["pid"]
    assert "code changed under functions/ or schemas/, new worker" in runtime.log_file(name).read_text()


def test_a_schema_edit_is_seen_by_the_next_invocation(
    project: Path, function: tuple[LambdaRuntime, str]
) -> None:
    runtime, name = function
    assert _invoke(runtime, name)["schema"] == {"title": "first"}
    log = runtime.log_file(name)
    assert "code changed" not in log.read_text()

    (project / "schemas" / "probe.json").write_text('{"title": "the second"}')

    assert _invoke(runtime, name)["schema"] == {"title": "the second"}
    assert "code changed under functions/ or schemas/, new worker" in log.read_text()
