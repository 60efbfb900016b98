"""The pool of BatchWriteItem requests against moto: request counts, per-key order, the shared backoff,
refusals and failures on the caller's thread, flush durability, bounded requests in flight.

Every request goes through the real botocore client to moto. Only where DynamoDB's side has to misbehave
(UnprocessedItems, throttling) or be slow does a `before-call` hook answer or hold a call; it is
registered before any writer thread starts (boto3 guide: clients stay thread-safe as long as their
event handlers are not changed while in use).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from functions.core.adapters.dynamodb_batch_writer import (
    Backoff,
    DynamoBatchWriter,
    SharedPause,
    pre_encode_batch_writes,
)
from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.domain.table_layout import record_key, record_partition
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.outcome import Status

from ..conftest import BUCKET, REGION, TABLE, World, parse

PATIENCE = 10.0  # seconds a test waits for a state that a correct writer reaches at once


def item(n: int, pk: str = "data/a.jsonl", **data: Any) -> dict[str, Any]:
    return {
        "pk": {"S": record_partition(pk, n)},  # layout 2 (table_layout.py)
        "sk": {"S": f"{n:012d}"},
        "owner": {"S": f"b/{pk}"},
        "data": {"M": {"n": {"N": str(n)}, **data}},
    }


class BatchWrites:
    """Watches (and optionally answers) the BatchWriteItem calls of a client, from any thread.

    `answer(n, request_items)` may return DynamoDB's answer to the n-th call (from 0): a body, or
    (status, error code) for an error; the call then never reaches moto (`before-call` short-circuits
    the client, as botocore's Stubber does). `delay` holds each call that long (a slow network)."""

    def __init__(
        self,
        client: Any,
        answer: Callable[[int, list[dict[str, Any]]], dict[str, Any] | tuple[int, str] | None] | None = None,
        delay: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self._answer = answer
        self._delay = delay
        self.sent: list[list[dict[str, Any]]] = []  # request items of each call, in order
        self.in_flight = 0
        self.most_in_flight = 0
        self.finished = 0
        # After the writer's own before-call handler (registered first), before anything is sent.
        client.meta.events.register("before-call.dynamodb.BatchWriteItem", self._before_call)
        client.meta.events.register("after-call.dynamodb.BatchWriteItem", self._after_call)

    def _before_call(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        items = json.loads(params["body"])["RequestItems"][TABLE]
        with self._lock:
            number = len(self.sent)
            self.sent.append(items)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self._delay:
            time.sleep(self._delay)
        answer = self._answer(number, items) if self._answer else None
        if answer is None:
            return None
        if isinstance(answer, tuple):
            status, code = answer
            parsed = {
                "Error": {"Code": code, "Message": code},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
        else:
            status, parsed = 200, {**answer, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return AWSResponse(params["url"], status, {}, None), parsed

    def _after_call(self, **_: Any) -> None:
        with self._lock:
            self.in_flight -= 1
            self.finished += 1


def pool_writer(
    client: Any, writers: int, sleep: Callable[[float], None], on_refused: Any = None
) -> tuple[DynamoBatchWriter, SharedPause]:
    pause = SharedPause(Backoff(sleep))
    writer = DynamoBatchWriter(
        client,
        TABLE,
        Backoff(sleep),
        on_refused,
        executor=ThreadPoolExecutor(writers),
        writers=writers,
        pause=pause,
        encoded_bodies=pre_encode_batch_writes(client),  # batches leave the caller's thread encoded
    )
    return writer, pause


@pytest.mark.parametrize("writers", [1, 4, 16])
@pytest.mark.parametrize("records", [1, 25, 26, 1001])
def test_a_pool_sends_exactly_ceil_records_over_25_requests(world: World, writers: int, records: int) -> None:
    watch = BatchWrites(world.dynamodb)
    writer = DynamoRecordStore(world.dynamodb, TABLE, writers=writers).writer()

    for n in range(1, records + 1):
        writer.put(item(n))
    writer.flush()

    assert writer.requests == len(watch.sent) == math.ceil(records / 25)
    assert len(world.records()) == records


def test_at_most_writers_requests_are_in_flight_and_they_overlap(world: World) -> None:
    watch = BatchWrites(world.dynamodb, delay=0.2)  # round trips long enough for the pool to fill
    writer = DynamoRecordStore(world.dynamodb, TABLE, writers=3).writer()

    for n in range(1, 25 * 12 + 1):
        writer.put(item(n))
    writer.flush()

    # put() waited for a free slot: never more than 3 requests (75 items) held in flight.
    assert watch.most_in_flight == 3
    assert len(world.records()) == 300


def test_flush_returns_only_when_every_request_sent_is_written(world: World) -> None:
    watch = BatchWrites(world.dynamodb, delay=0.02)  # slow round trips: a flush that did not wait shows
    writer = DynamoRecordStore(world.dynamodb, TABLE, writers=16).writer()

    for n in range(1, 1001):
        writer.put(item(n))
    writer.flush()

    assert watch.finished == len(watch.sent) == 40
    assert len(world.records()) == 1000


def test_a_delete_waits_for_the_request_still_writing_the_same_key(world: World) -> None:
    """The first batch (the put of key 1) is held until some call has finished, or PATIENCE/10 passed. A
    writer that sent the second batch (the delete of key 1) meanwhile would have it land first."""
    another_finished = threading.Event()

    def hold_the_first(number: int, items: list[dict[str, Any]]) -> None:
        if number == 0:
            another_finished.wait(PATIENCE / 10)

    watch = BatchWrites(world.dynamodb, answer=hold_the_first)
    world.dynamodb.meta.events.register(
        "after-call.dynamodb.BatchWriteItem", lambda **_: another_finished.set()
    )
    writer = DynamoRecordStore(world.dynamodb, TABLE, writers=16).writer()

    for n in range(1, 26):
        writer.put(item(n))  # the 25th sends the first batch
    writer.delete(record_key("data/a.jsonl", 1))
    for n in range(26, 50):
        writer.put(item(n))  # fills and sends the second batch
    writer.flush()

    key_1 = [r for r in watch.sent[1] if json.dumps(r).count('"000000000001"')]
    assert key_1 == [{"DeleteRequest": {"Key": record_key("data/a.jsonl", 1)}}]
    assert ("data/a.jsonl", f"{1:012d}") not in world.records()
    assert len(world.records()) == 48


def test_one_throttled_response_pauses_every_sender_of_the_pool(world: World) -> None:
    """The first request comes back with every item unprocessed. While its sender backs off, the other
    senders wait: the pause (the test's sleep) ends only once the 3 other threads are held."""

    def throttle_the_first(number: int, items: list[dict[str, Any]]) -> dict[str, Any] | None:
        return {"UnprocessedItems": {TABLE: items}} if number == 0 else None

    watch = BatchWrites(world.dynamodb, answer=throttle_the_first)
    during_pause: list[int] = []
    pause: SharedPause

    def sleep(_: float) -> None:
        sent_before = len(watch.sent)
        deadline = time.monotonic() + PATIENCE
        while pause.held < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        during_pause.append(len(watch.sent) - sent_before)

    writer, pause = pool_writer(world.dynamodb, 4, sleep)
    for n in range(1, 25 * 8 + 1):
        writer.put(item(n))
    writer.flush()

    assert pause.pauses == 1
    assert pause.held == 3  # every other sender waited for the pause
    assert during_pause == [0]  # and nothing was sent while it lasted
    assert writer.requests == len(watch.sent) == 9
    assert len(world.records()) == 200


def test_a_throttling_error_pauses_the_pool_and_the_batch_is_sent_again(world: World) -> None:
    def throttle_the_first(number: int, items: list[dict[str, Any]]) -> tuple[int, str] | None:
        return (400, "ProvisionedThroughputExceededException") if number == 0 else None

    watch = BatchWrites(world.dynamodb, answer=throttle_the_first)
    writer, pause = pool_writer(world.dynamodb, 4, world.sleeps.append)
    for n in range(1, 101):
        writer.put(item(n))
    writer.flush()

    assert pause.pauses == len(world.sleeps) == 1
    assert writer.requests == len(watch.sent) == 5
    assert len(world.records()) == 100


def test_refused_items_are_delivered_on_the_callers_thread(world: World) -> None:
    refused: list[tuple[str, int]] = []
    refused_items: list[dict[str, Any]] = []

    def on_refused(bad: dict[str, Any], _: str) -> None:
        refused.append((bad["sk"]["S"], threading.get_ident()))
        refused_items.append(bad)

    writer = DynamoRecordStore(world.dynamodb, TABLE, writers=4).writer(on_refused)
    too_big: dict[str, Any] = {"blob": {"S": "x" * 500_000}}  # bypasses the converter's size check

    for n in range(1, 101):
        writer.put(item(n, **too_big) if n in (30, 77) else item(n))
    writer.flush()

    # Requests end in any order: the refusals of two batches may come in either.
    assert sorted(refused) == [(f"{30:012d}", threading.get_ident()), (f"{77:012d}", threading.get_ident())]
    # The batch left the caller's thread as an encoded body: what comes back is the item as put.
    assert sorted(refused_items, key=lambda bad: bad["sk"]["S"]) == [item(30, **too_big), item(77, **too_big)]
    assert len(world.records()) == 98


def test_a_failure_in_a_pool_thread_is_raised_to_the_caller_and_stops_the_writer(world: World) -> None:
    writer = DynamoRecordStore(world.dynamodb, "no-such-table", writers=4).writer()

    def put_50_and_flush() -> None:
        for n in range(1, 51):
            writer.put(item(n))  # the first request's failure surfaces at the next put once it ended...
        writer.flush()  # ...or here at the latest

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        put_50_and_flush()
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        writer.put(item(51))  # a failed writer stays failed


def test_close_stops_retrying_and_waits_for_the_requests_in_flight(world: World) -> None:
    """A caller stopping on an exception of its own closes the writer: nothing of it lands afterwards.
    Every request comes back unprocessed; the backoff pause lasts until close() has begun."""

    def unprocessed(number: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"UnprocessedItems": {TABLE: items}}

    def sleep(_: float) -> None:
        deadline = time.monotonic() + PATIENCE
        while not writer.closed and time.monotonic() < deadline:
            time.sleep(0.001)

    watch = BatchWrites(world.dynamodb, answer=unprocessed)
    writer, _ = pool_writer(world.dynamodb, 4, sleep)
    for n in range(1, 51):
        writer.put(item(n))  # two requests leave
    writer.close()

    assert watch.finished == len(watch.sent) <= 2  # no retry after close, nothing left in flight
    assert world.records() == {}
    with pytest.raises(RuntimeError, match="closed"):
        writer.put(item(51))


@pytest.mark.parametrize("writers", [1, 4])
def test_a_with_block_flushes_when_it_ends_and_closes_when_it_raises(world: World, writers: int) -> None:
    store = DynamoRecordStore(world.dynamodb, TABLE, writers=writers)
    with store.writer() as writer:
        for n in range(1, 31):
            writer.put(item(n))
    assert len(world.records()) == 30

    def fail_inside_the_block() -> None:
        with store.writer() as writer:
            for n in range(31, 41):
                writer.put(item(n))  # buffered, never sent: the block fails before the 25th
            raise KeyError("the caller's own failure")

    with pytest.raises(KeyError):
        fail_inside_the_block()
    assert len(world.records()) == 30


def test_a_pre_encoded_body_is_the_one_botocore_would_send(world: World) -> None:
    """The same call through botocore's serializer and through `pre_encode_batch_writes`: equal JSON."""
    bodies: list[Any] = []
    serialized: list[Any] = []  # what botocore's serializer was given
    given: list[int] = []  # requests in the call's parameters

    def keep(request: Any, **_: Any) -> None:
        bodies.append(json.loads(request.body))

    plain = boto3.client("dynamodb", region_name=REGION)
    encoded = boto3.client("dynamodb", region_name=REGION)
    assert pre_encode_batch_writes(encoded)
    record = item(
        1,
        text={"S": "naïve ☃ \u2028"},
        flags={"L": [{"BOOL": True}, {"NULL": True}, {"N": "-1.5E+3"}]},
        nested={"M": {"a": {"M": {"b": {"S": ""}}}}},
    )
    for client in (plain, encoded):
        client.meta.events.register("before-send.dynamodb.BatchWriteItem", keep)
        client.meta.events.register(
            "before-parameter-build.dynamodb.BatchWriteItem",
            lambda params, **_: serialized.append(len(params["RequestItems"])),
        )
        client.meta.events.register(
            "provide-client-params.dynamodb.BatchWriteItem",
            lambda params, **_: given.append(len(params["RequestItems"][TABLE])),
        )
        client.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": record}}]})
    # A writer of the pre-encoding client encodes the batch itself and hands botocore an empty list.
    writer = DynamoBatchWriter(encoded, TABLE, Backoff(time.sleep), encoded_bodies=True)
    writer.put(record)
    writer.flush()

    assert serialized == [1, 0, 0]  # the pre-encoded calls left botocore's serializer an empty map
    assert given == [1, 1, 0]  # and the writer's call carried its batch as a body, not as items
    expected = {"RequestItems": {TABLE: [{"PutRequest": {"Item": record}}]}}
    assert bodies[0] == bodies[1] == bodies[2] == expected
    assert world.item("data/a.jsonl", f"{1:012d}")["data"]["text"] == "naïve ☃ \u2028"


def test_an_ingest_that_stops_early_leaves_no_request_in_flight_when_it_releases_the_lease(
    world: World,
) -> None:
    """A newer event is announced while the pool writes; the writer stops at its next check and the lease
    is released: by then every request of the stopped attempt has ended (none lands afterwards)."""
    event = world.put("data/a.jsonl", "".join(json.dumps({"n": n}) + "\n" for n in range(2100)))
    owner = f"{BUCKET}/data/a.jsonl"
    newer = world.next_sequencer()

    def announce_a_newer_event(number: int, items: list[dict[str, Any]]) -> None:
        if number == 5:
            DynamoRecordStore(world.dynamodb, TABLE).announce(owner, newer)

    # Slow round trips: the last batches are still on their way when the writer stops.
    watch = BatchWrites(world.dynamodb, answer=announce_a_newer_event, delay=0.1)
    in_flight_at_release: list[int] = []
    sent_at_release: list[int] = []

    class Store(DynamoRecordStore):
        def release(self, object_id: str, token: str, *, dirty: bool) -> None:
            in_flight_at_release.append(watch.in_flight)
            sent_at_release.append(len(watch.sent))
            super().release(object_id, token, dirty=dirty)

    store = Store(world.dynamodb, TABLE, writers=16)
    outcome = ingest_object(world.services(store=store), parse(event))
    store._executor.shutdown(wait=True)  # type: ignore[union-attr]  # a request left behind ends now

    assert outcome.status == Status.SUPERSEDED
    assert in_flight_at_release == [0]
    assert sent_at_release == [len(watch.sent)]  # nothing was sent after the release either


def test_a_record_dynamodb_refuses_is_quoted_even_when_the_pool_reports_it_late(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal of record 2 reaches the use case after thousands of later lines were read."""
    import functions.core.domain.records as records

    monkeypatch.setattr(records, "MAX_ITEM_BYTES", 10 * 1024 * 1024)  # as if our size rule had a gap
    lines = [json.dumps({"n": 1}), json.dumps({"blob": "x" * 500_000, "n": 2, "ok": None})]
    lines += [json.dumps({"n": n}) for n in range(3, 3001)]
    event = world.put("data/x.jsonl", "\n".join(lines))

    outcome = ingest_object(world.services(), parse(event))

    [entry] = world.report(outcome.report_key or "")
    assert (entry["position"], entry["reason"]) == (2, "refused_by_dynamodb")
    assert entry["record"].startswith('{"blob": "xxxxxxxx')  # the record, cut to the report's limit
    assert entry["record_truncated"] is True
    assert outcome.records_written == 2999
