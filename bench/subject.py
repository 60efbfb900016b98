"""The code under test, reached through its contracts only (docs/architecture.md).

The ingest handler is imported by its handler string and configured through the environment the stack
gives it, so the benchmark exercises exactly what Lambda runs. The pieces used to isolate CPU and memory
(readers, converter, record-store protocol) are looked up here, in one place, so a rename in
`functions/` is a one-line change.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import IO, Any, Protocol

from bench.aws import BUCKET, REJECTS_BUCKET, TABLE
from bench.events import LambdaContext, object_created, sequencer
from functions.core.wiring import env as names

HANDLER_MODULE = "functions.ingest.handler"

# The handler's stdout (Powertools JSON logs, EMF metrics) is kept here instead of flooding the report;
# its line count per invocation is reported, so per-record logging would show up as a cost.
captured_output = io.StringIO()


def handler_environment(endpoint: str | None) -> dict[str, str]:
    """The ingest function's environment as the stack sets it (plus the emulator endpoint)."""
    env = {
        names.TABLE_NAME: TABLE,
        names.REJECTS_BUCKET: REJECTS_BUCKET,
        names.POWERTOOLS_SERVICE_NAME: "ingest",
        names.POWERTOOLS_METRICS_NAMESPACE: "eventpipe",
        names.POWERTOOLS_LOG_LEVEL: "INFO",
        # Lambda's active tracing alone; the Powertools Tracer (X-Ray SDK) is opt-in (docs/operations.md)
        names.POWERTOOLS_TRACE_DISABLED: "true",
    }
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


class Invoke(Protocol):
    def __call__(self, event: dict[str, Any], context: Any = None) -> Any: ...


def load_handler(endpoint: str) -> Invoke:
    """Configure the environment, then import the handler (settings are read once, at first use)."""
    os.environ.update(handler_environment(endpoint))
    with contextlib.redirect_stdout(captured_output):
        module: ModuleType = importlib.import_module(HANDLER_MODULE)
    handler: Callable[[dict[str, Any], Any], Any] = module.lambda_handler

    def invoke(event: dict[str, Any], context: Any = None) -> Any:
        with contextlib.redirect_stdout(captured_output):
            return handler(event, context or LambdaContext())

    return invoke


def output_lines() -> int:
    return captured_output.getvalue().count("\n")


class CountingWriter:
    """The data layer's batch writer, minus the network: takes items 25 at a time and drops them, like a
    writer that sent them. (Keeping every item would make the GC walk a growing heap and bill that to
    the converter.)"""

    def __init__(self) -> None:
        self.batch: list[Any] = []
        self.stored = 0
        self.requests = 0

    def put(self, item: Any) -> None:
        self.batch.append(item)
        if len(self.batch) == 25:
            self.flush()

    def delete(self, key: Any) -> None:
        self.put(key)

    def flush(self) -> None:
        if self.batch:
            self.requests += 1
            self.stored += len(self.batch)
            self.batch = []

    def close(self) -> None:
        self.batch = []


class EncodingWriter(CountingWriter):
    """`CountingWriter` that also encodes each batch of 25 into its BatchWriteItem body, as the real writer
    does on the caller's thread (`dynamodb_batch_writer.encode_batch`), then drops it."""

    def flush(self) -> None:
        from functions.core.adapters.dynamodb_batch_writer import encode_batch

        if self.batch:
            encode_batch(TABLE, [{"PutRequest": {"Item": item}} for item in self.batch])
        super().flush()


class InMemoryStore:
    """A `RecordStore` for a table that holds nothing yet: every lease is granted, nothing is stale."""

    def acquire(self, object_id: str, sequencer: str, token: str, **_: Any) -> Any:
        from functions.core.domain.object_state import Acquired, ObjectState

        return Acquired(prior=ObjectState())

    def announce(self, object_id: str, sequencer: str) -> None:
        return None

    def superseded(self, object_id: str, sequencer: str) -> bool:
        return False

    def release(self, object_id: str, token: str, *, dirty: bool) -> None:
        return None

    def commit(self, object_id: str, token: str, commit: Any, *, writer: str | None = None) -> None:
        return None

    def checkpoint(self, object_id: str, token: str, checkpoint: Any) -> None:
        return None

    # The benchmark's services have no work queue: ingest never fans out or hands over here.
    def start_fanout(self, object_id: str, token: str, **_: Any) -> None:
        raise AssertionError("the benchmark never fans out")

    def join_fanout(self, object_id: str, token: str, writer: str, **_: Any) -> Any:
        raise AssertionError("the benchmark never fans out")

    def leave_fanout(self, object_id: str, token: str, writer: str, **_: Any) -> Any:
        raise AssertionError("the benchmark never fans out")

    def claim_finalize(self, object_id: str, token: str, writer: str, **_: Any) -> bool:
        raise AssertionError("the benchmark never fans out")

    def abandon_fanout(self, object_id: str, token: str, writer: str | None, **_: Any) -> bool:
        raise AssertionError("the benchmark never fans out")

    def advance(self, object_id: str, token: str, **_: Any) -> None:
        return None

    def has_state(self, object_id: str) -> bool:
        return False

    def __init__(self, *, encode: bool = False) -> None:
        self.writers: list[CountingWriter] = []
        self._encode = encode

    def writer(self, on_refused: Any = None) -> CountingWriter:
        writer = EncodingWriter() if self._encode else CountingWriter()
        self.writers.append(writer)
        return writer

    def positions_after(self, partition: str, position: int, owner: str) -> Iterator[Any]:
        return iter(())

    def owned_natural_keys(self, owner: str) -> Iterator[Any]:
        return iter(())

    def delete_owned(self, keys: Iterable[Any], owner: str) -> int:
        return 0

    @property
    def stored(self) -> int:
        return sum(writer.stored for writer in self.writers)


class MemoryReports:
    def __init__(self) -> None:
        self.reports: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        self.reports[key] = body

    def get(self, key: str) -> bytes | None:
        return self.reports.get(key)

    def delete(self, key: str) -> None:
        self.reports.pop(key, None)


class StreamReader:
    """An `ObjectReader` that hands out a stream prepared by the benchmark."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes]:
        return self._stream

    def presence(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> Any:
        from functions.core.domain.object_versions import Presence

        return Presence.ANNOUNCED  # the benchmark's object is there under the key its event names

    def is_live(self, bucket: str, key: str) -> bool:
        return True


def run_use_case(key: str, objects: Any, store: InMemoryStore | None = None) -> Any:
    """`functions.core.use_cases.ingest.ingest_object` with the data layer in memory; returns its Outcome."""
    from functions.core.domain.datasets import DatasetRegistry
    from functions.core.domain.events import ObjectEvent
    from functions.core.use_cases.ingest import ingest_object
    from functions.core.use_cases.ports import Services

    services = Services(
        store=store or InMemoryStore(),
        objects=objects,
        reports=MemoryReports(),
        datasets=DatasetRegistry.load(),
    )
    event = ObjectEvent.from_eventbridge(
        object_created(bucket=BUCKET, key=key, size=0, etag="etag", sequencer=sequencer(1), version_id="v1")
    )
    return ingest_object(services, event)


class CpuStages:
    """The per-record pipeline of the ingest code, cut into stages, with the data layer in memory."""

    description = (
        "functions.core.use_cases.ingest.ingest_object (people dataset: fastjsonschema + natural key) "
        "with an in-memory RecordStore / ObjectReader / ReportSink; stages: readers.read_records alone, "
        "+ records.ItemBuilder.build without schema"
    )
    key = "people/bench.jsonl"

    def __init__(self) -> None:
        from functions.core.domain.datasets import Dataset
        from functions.core.domain.formats import detect_format
        from functions.core.domain.records import Provenance

        detected = detect_format(self.key)
        assert detected is not None
        self._format = detected
        self._unvalidated = Dataset(name="bench")
        self._provenance = Provenance(
            bucket=BUCKET,
            key=self.key,
            sequencer=sequencer(1),
            event_id="00000000-0000-4000-8000-000000000000",
            ingested_at="2026-01-01T00:00:00Z",
            version_id="v1",
            etag="etag",
        )

    def _records(self, stream: IO[bytes]) -> Any:
        from functions.core.domain.readers import read_records

        return read_records(stream, self._format)

    def read_only(self, stream: IO[bytes]) -> int:
        return sum(1 for _ in self._records(stream))

    def read_convert(self, stream: IO[bytes]) -> int:
        from functions.core.domain.readers import BLANK, Malformed
        from functions.core.domain.records import ItemBuilder, RecordRejectedError

        builder = ItemBuilder(self._unvalidated, self._provenance)
        writer = CountingWriter()
        for position, record in self._records(stream):
            if record is BLANK or isinstance(record, Malformed):
                continue
            try:
                writer.put(builder.build(position, record))
            except RecordRejectedError:
                continue
        writer.flush()
        return writer.stored

    def full(self, stream: IO[bytes], store: InMemoryStore | None = None) -> int:
        outcome = run_use_case(self.key, StreamReader(stream), store)
        if outcome.records_rejected:
            raise RuntimeError(f"{outcome.records_rejected} benchmark records were rejected: {outcome}")
        return int(outcome.records_written)


class _StubBody:
    """The raw body of a stubbed response: botocore reads `AWSResponse.content` through `stream()`."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class ClientStageClock:
    """CPU spent inside a real botocore DynamoDB client, split at its documented events (botocore Events,
    https://docs.aws.amazon.com/botocore/latest/topics/events.html): `provide-client-params` ->
    `before-send` is request building, serialization and SigV4 signing; `before-send` also answers the
    request (an AWSResponse, no network: "allows a response to be returned that fulfills the request");
    from there to `after-call` is response parsing."""

    RESPONSE = b'{"UnprocessedItems":{}}'

    def __init__(self) -> None:
        self.build_sign = 0.0
        self.parse = 0.0
        self.requests = 0
        # A pool of writers calls the client from several threads: one mark per thread, sums under a lock.
        self._local = threading.local()
        self._lock = threading.Lock()

    def attach(self, events: Any) -> None:
        events.register("provide-client-params.dynamodb.BatchWriteItem", self._start)
        events.register("before-send.dynamodb.BatchWriteItem", self._answer)
        events.register("after-call.dynamodb.BatchWriteItem", self._parsed)

    # time.thread_time: the CPU of the calling thread only, so pool threads do not bill each other.
    def _start(self, **_: Any) -> None:
        self._local.mark = time.thread_time()

    def _answer(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        spent = time.thread_time() - self._local.mark
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "bench"}
        response = AWSResponse(request.url, 200, headers, _StubBody(self.RESPONSE))
        with self._lock:
            self.build_sign += spent
            self.requests += 1
        self._local.mark = time.thread_time()
        return response

    def _parsed(self, **_: Any) -> None:
        spent = time.thread_time() - self._local.mark
        with self._lock:
            self.parse += spent


def stubbed_dynamodb_client(clock: ClientStageClock) -> Any:
    """A DynamoDB client configured like the function's (functions/core/wiring/lambda_services.py), in a
    private session (the default session stays the code under test's), whose sends `clock` answers."""
    import boto3

    # As in the function: importing Powertools registers a botocore session initializer that adds a
    # User-Agent handler to every client created afterwards (a per-request cost to count).
    import functions.core.wiring.observability  # noqa: F401
    from eventpipe.local.auth import LocalCredentials
    from functions.core.wiring.lambda_services import dynamodb_client

    # Throwaway credentials: SigV4 signs with them (it costs the same), nothing ever leaves the process.
    credentials = LocalCredentials.generate().aws_environment()
    session = boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    client = dynamodb_client(session)
    clock.attach(client.meta.events)
    return client


class ClientStore(InMemoryStore):
    """The in-memory store, except that items leave through the real `DynamoRecordStore` writer and a
    real botocore client (whose sends are answered in process)."""

    def __init__(self, client: Any, writers: int | None = None) -> None:
        super().__init__()
        from functions.core.adapters.dynamodb_record_store import DynamoRecordStore

        # The function's default pool unless told otherwise (Settings.writers, default 16).
        self._real = (
            DynamoRecordStore(client, TABLE, writers=writers) if writers else DynamoRecordStore(client, TABLE)
        )
        self.written = 0

    def writer(self, on_refused: Any = None) -> Any:
        return self._real.writer(on_refused)


def cpu_stages() -> CpuStages:
    return CpuStages()


def streaming_ingest() -> Callable[[IO[bytes], str], int]:
    """For the memory probe: ingest one S3 body through the use case, items into the counting store.

    The ingest modules are imported here, before the probe takes its baseline: code is not data."""
    import functions.core.use_cases.ingest  # noqa: F401

    def ingest(body: IO[bytes], key: str) -> int:
        outcome = run_use_case(key, StreamReader(body))
        return int(outcome.records_written)

    return ingest
