"""Fixtures for tests against the embedded AWS: ONE emulator per test session (per xdist worker),
started on a free port with the real synthesized stack deployed, plus clients and a poller."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from eventpipe.local.deploy import ensure_template
from eventpipe.local.emulator import Emulator

T = TypeVar("T")
Waiter = Callable[..., Any]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator with eventpipe-dev deployed (synthesized first if cdk.out has no template)."""
    template = ensure_template("dev")
    state_dir = tmp_path_factory.mktemp("eventpipe-local")
    running = Emulator.start(port=0, template=template, state_dir=state_dir)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def outputs(emulator: Emulator) -> dict[str, str]:
    return emulator.outputs


@pytest.fixture(scope="session")
def aws(emulator: Emulator) -> Callable[[str], Any]:
    """`aws("s3")` -> a boto3 client on the emulator (cached per service)."""
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = emulator.client(service)
        return clients[service]

    return client


@pytest.fixture(scope="session")
def s3(aws: Callable[[str], Any]) -> Any:
    return aws("s3")


@pytest.fixture(scope="session")
def sqs(aws: Callable[[str], Any]) -> Any:
    return aws("sqs")


@pytest.fixture(scope="session")
def events(aws: Callable[[str], Any]) -> Any:
    return aws("events")


def poll(
    predicate: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"
) -> T:
    """Call `predicate` until it returns something truthy and return it; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def wait_for() -> Waiter:
    """`wait_for(predicate, timeout=15, message=...)`: poll with a deadline, never a long sleep."""
    return poll


@pytest.fixture(scope="session")
def settle(emulator: Emulator) -> Callable[[], None]:
    """Block until the emulator has nothing queued, due or running (event engine + Lambda)."""
    return lambda: emulator.wait_idle(timeout=60)


class Mailbox:
    """Every message of one SQS queue, drained into memory so tests can look up their own events
    without consuming (and losing) other tests' messages."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs, self.queue_url = sqs, queue_url
        self.messages: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while True:
            batch = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            received = batch.get("Messages", [])
            if not received:
                return self.messages
            for message in received:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                self.messages.append(message)

    def bodies(self, predicate: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [body for body in (json.loads(m["Body"]) for m in self.drain()) if predicate(body)]


@pytest.fixture(scope="session")
def audit_mailbox(sqs: Any, outputs: dict[str, str]) -> Mailbox:
    """The audit consumer's queue: every event of the ingest bucket, as delivered via the project bus."""
    return Mailbox(sqs, outputs["AuditQueueUrl"])


@pytest.fixture
def mailbox_factory(sqs: Any) -> Iterator[Callable[[str], tuple[Mailbox, str]]]:
    """Create a throwaway queue: returns (mailbox, queue ARN); deleted after the test."""
    created: list[str] = []

    def make(name: str) -> tuple[Mailbox, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        created.append(url)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Mailbox(sqs, url), arn

    yield make
    for url in created:
        sqs.delete_queue(QueueUrl=url)
