"""The thin Lambda handlers: real-shaped events in, table and telemetry out (moto in-process)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from functions.core.wiring import lambda_services, observability, settings
from functions.delete_sync.handler import lambda_handler as delete_handler
from functions.ingest.handler import lambda_handler as ingest_handler

from ..conftest import REJECTS, TABLE, World, load_event


@dataclass
class LambdaContext:
    function_name: str = "eventpipe-dev-ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:eventpipe-dev-ingest"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def lambda_env(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("REJECTS_BUCKET", REJECTS)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ingest")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "eventpipe")
    # The handler modules were imported (and Powertools configured) before this environment existed.
    monkeypatch.setattr(observability.metrics, "namespace", "eventpipe")
    monkeypatch.setattr(observability.metrics, "service", "ingest")
    settings.get_settings.cache_clear()
    lambda_services.base_services.cache_clear()
    yield world
    settings.get_settings.cache_clear()
    lambda_services.base_services.cache_clear()


def emitted(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """EMF metric blobs the handler printed to stdout."""
    return [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]


def logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The handler's log records, rendered by Powertools' JSON formatter as CloudWatch would show them."""
    formatter = observability.logger.registered_formatter
    return [json.loads(formatter.format(record)) for record in caplog.records]


def metric_values(lines: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in lines:
        if "_aws" in line:
            for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = line[metric["Name"]]
                found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


SAMPLE = '{"Name": "John Doe", "Role": "Developer", "Email": "john.doe@example.com"}'


def test_ingest_handler_writes_the_tutorial_sample_and_reports_telemetry(
    lambda_env: World, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    event = lambda_env.put("sample.json", SAMPLE)

    result = ingest_handler(event, LambdaContext())

    assert result["status"] == "ingested"
    assert lambda_env.records() == {("sample.json", "000000000001"): json.loads(SAMPLE)}
    processed = next(line for line in logged(caplog) if line.get("message") == "event processed")
    assert processed["correlation_id"] == event["id"]
    assert processed["records_written"] == 1
    assert metric_values(emitted(capfd)) == {
        "RecordsIngested": 1,
        "RecordsRejected": 0,
        "ItemsRemoved": 0,
        "ObjectsSkippedStale": 0,
    }


@pytest.mark.parametrize(
    "fixture",
    [
        "s3_object_created_copy.json",
        "s3_object_created_encoded_key.json",
        "s3_object_created_multipart.json",
        "s3_object_created_replayed.json",
    ],
)
def test_ingest_handler_treats_an_event_whose_version_is_gone_as_stale(
    lambda_env: World, capfd: pytest.CaptureFixture[str], fixture: str
) -> None:
    event = load_event(fixture)  # its bucket exists, its object version does not

    result = ingest_handler(event, LambdaContext())

    assert result["status"] == "stale"
    assert metric_values(emitted(capfd))["ObjectsSkippedStale"] == 1


def test_ingest_handler_reads_a_url_encoded_key(lambda_env: World) -> None:
    event = lambda_env.put("people/new hires + = équipe.json", SAMPLE)
    assert event["detail"]["object"]["key"] == "people/new+hires+%2B+%3D+%C3%A9quipe.json"

    result = ingest_handler(event, LambdaContext())

    assert (result["status"], result["records_written"]) == ("ingested", 1)


def test_ingest_handler_ignores_a_malformed_event_instead_of_failing(
    lambda_env: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    event = load_event("s3_object_created_put_versioned.json")
    del event["detail"]["object"]["sequencer"]

    result = ingest_handler(event, LambdaContext())

    assert result["status"] == "invalid"
    assert [line["level"] for line in logged(caplog) if line["message"] == "ignored event"] == ["ERROR"]
    assert metric_values(emitted(capfd)) == {"EventsIgnored": 1}


@pytest.mark.parametrize(
    "fixture", ["s3_object_deleted_delete_marker.json", "s3_object_deleted_lifecycle_expiration.json"]
)
def test_delete_handler_removes_the_objects_records(lambda_env: World, fixture: str) -> None:
    created = lambda_env.put("sample.json", SAMPLE)
    ingest_handler(created, LambdaContext())
    deleted = load_event(fixture)
    deleted["detail"]["object"] = {
        **deleted["detail"]["object"],
        "key": "sample.json",
        "sequencer": lambda_env.next_sequencer(),
    }

    result = delete_handler(deleted, LambdaContext())

    assert (result["status"], result["items_removed"]) == ("deleted", 1)
    assert lambda_env.records() == {}


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_transient_failures_propagate_so_lambda_retries(
    lambda_env: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABLE_NAME", "no-such-table")
    settings.get_settings.cache_clear()
    lambda_services.base_services.cache_clear()

    with pytest.raises(Exception, match="ResourceNotFound"):
        ingest_handler(lambda_env.put("sample.json", SAMPLE), LambdaContext())


@pytest.mark.parametrize(
    ("handler", "fixture"),
    [
        (ingest_handler, "s3_object_deleted_delete_marker.json"),
        (delete_handler, "s3_object_created_put_versioned.json"),
    ],
    ids=["deleted event to ingest", "created event to delete-sync"],
)
def test_a_misrouted_event_is_ignored_not_retried(lambda_env: World, handler: Any, fixture: str) -> None:
    result = handler(load_event(fixture), LambdaContext())

    assert result["status"] == "invalid"
    assert lambda_env.records() == {}


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def s3_error(status: int, code: str) -> Callable[[Any], Any]:
    # S3 GetObject only reads, so moto answering the same request behind this response changes nothing.
    def respond(request: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        headers = {"x-amz-request-id": "test", "Content-Type": "application/xml"}
        return AWSResponse(request.url, status, headers, _Body(body))

    return respond


def read_timeout(request: Any) -> Any:
    # Raised before moto's handler runs, so the (conditional) update never reaches the table.
    from botocore.exceptions import ReadTimeoutError

    raise ReadTimeoutError(endpoint_url=request.url)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    ("service", "operation", "respond", "error"),
    [
        ("s3", "GetObject", s3_error(503, "SlowDown"), "SlowDown"),
        ("s3", "GetObject", s3_error(500, "InternalError"), "InternalError"),
        ("dynamodb", "UpdateItem", read_timeout, "Read timeout"),
    ],
    ids=["s3 throttling", "s3 5xx", "dynamodb timeout"],
)
def test_a_transient_failure_is_retried_a_bounded_number_of_times_then_raised(
    lambda_env: World,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    operation: str,
    respond: Callable[[Any], Any],
    error: str,
) -> None:
    """The handler's own clients (wiring/lambda_services.py) meet a persistently failing AWS call with a
    bounded number of attempts, then raise: Lambda's async retries and the on-failure queue take over."""
    import boto3
    import botocore.retries.standard

    attempts: list[str] = []

    def fail(request: Any, **_: Any) -> Any:
        attempts.append(operation)
        return respond(request)

    real_client = boto3.client

    def client_that_fails(name: str, *args: Any, **kwargs: Any) -> Any:
        created = real_client(name, *args, **kwargs)
        if name == service:  # ahead of moto's own before-send handler
            created.meta.events.register_first(f"before-send.{service}.{operation}", fail)
        return created

    monkeypatch.setattr(boto3, "client", client_that_fails)
    # Retry at once: the number of attempts is what is under test, not botocore's backoff timing.
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda *_: 0)
    event = lambda_env.put("sample.json", SAMPLE)

    with pytest.raises(Exception, match=error):
        ingest_handler(event, LambdaContext())

    assert attempts == [operation] * lambda_services.MAX_ATTEMPTS == [operation] * 5
    state = lambda_env.dynamodb.get_item(
        TableName=TABLE,
        Key={"pk": {"S": f"object#{event['detail']['bucket']['name']}/sample.json"}, "sk": {"S": "state"}},
    ).get("Item", {})
    assert "lease_token" not in state  # no lease left behind: Lambda's retry can start at once
    assert lambda_env.records() == {}


@pytest.mark.parametrize("timeout_seconds", [60, 300, 900])
def test_an_invocations_lease_outlives_it_whatever_the_function_timeout(
    lambda_env: World, timeout_seconds: int
) -> None:
    # A holder still writing after its lease expired could overwrite a newer version's items.
    class Context(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return timeout_seconds * 1000

    services = lambda_services.services_for(Context())

    assert services.lease.lease_seconds > timeout_seconds
    assert services.lease.lease_seconds >= 330  # never shorter than the configured lease
    assert services.invocation_id == LambdaContext.aws_request_id
