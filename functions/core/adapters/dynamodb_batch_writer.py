"""BatchWriteItem for the records table: `DynamoBatchWriter`, a bounded pool of in-flight requests.

One request at a time waits out each round trip (milliseconds on AWS), so the writer keeps up to
`writers` requests in flight on a thread pool. Low-level botocore clients are thread-safe ("Low-level
clients are thread safe", boto3 guide "Low-level clients", section "Multithreading or multiprocessing with
clients"); the client's `max_pool_connections` must cover the pool, or urllib3 opens and discards extra
connections. What stays as with one writer: exactly ceil(n/25) requests absent throttling, bounded
retries of `UnprocessedItems`, items refused as invalid reported (on the caller's thread), bounded memory.

With a client of `pre_encode_batch_writes`, the caller's thread encodes each batch as it fills and only
the bytes go to the pool: encoding there, later, cost ~50% more CPU (the items were out of the CPU
caches), and 16 batches of items kept alive for their round trips were promoted by the garbage collector
into full collections over botocore's models (13-16 us/record of collector CPU against 0.4 with one
writer). Measured with the benchmark's in-process client (bench/subject.py), 16 writers.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Executor, Future, wait
from typing import Any, Final

from botocore.exceptions import ClientError

from functions.core.domain.object_state import TransientStoreError
from functions.core.domain.table_layout import Item, Key

BATCH_WRITE_LIMIT: Final = 25
# Requests in flight by default: 16 x 25 = 400 items per round trip (about 26,000 items/s at 15 ms per
# round trip, before CPU bounds it; figures in `make bench`, section `scale`).
DEFAULT_WRITERS: Final = 16
MAX_UNPROCESSED_ROUNDS: Final = 8
# DynamoDB's throttling errors (API reference, BatchWriteItem "Errors", and the developer guide's
# "Error handling" page): botocore already retried them; what is left pauses the pool like
# UnprocessedItems does, then the same bounded rounds apply.
THROTTLING_CODES: Final = frozenset(
    {"ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException"}
)

# Where `pre_encode_batch_writes` keeps a request's body between two events of one call.
_BODY: Final = "eventpipe.batch_write_body"

Refusal = tuple[Item, str]  # an item DynamoDB refused as invalid, and its message
_KeyOf = tuple[str, str]  # (pk, sk)
# A batch in flight: its requests, or (from a writer of a pre-encoding client) their encoded body.
_Batch = list[dict[str, Any]] | bytes


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog), bounded per round."""

    def __init__(self, sleep: Callable[[float], None], base: float = 0.05, cap: float = 5.0) -> None:
        self._sleep = sleep
        self._base = base
        self._cap = cap

    def pause(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(self._cap, self._base * 2**attempt)))  # noqa: S311 - jitter


class SharedPause:
    """One backoff for a whole pool: while a sender pauses after a throttled response, no sender of the
    pool starts a request (they all write to the same table, so they would only be throttled too)."""

    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff
        self._idle = threading.Condition()
        self._pausing = 0
        self.pauses = 0  # backoff pauses taken (one per throttled round)
        self.held = 0  # requests that waited for another sender's pause before starting

    def pause(self, attempt: int) -> None:
        with self._idle:
            self._pausing += 1
            self.pauses += 1
        try:
            self._backoff.pause(attempt)
        finally:
            with self._idle:
                self._pausing -= 1
                self._idle.notify_all()

    def wait_turn(self) -> None:
        with self._idle:
            if self._pausing:
                self.held += 1
                self._idle.wait_for(lambda: not self._pausing)


class DynamoBatchWriter:
    """Buffers puts/deletes and sends them 25 per BatchWriteItem, up to `writers` requests in flight.

    Two requests for one key are never in flight together: BatchWriteItem refuses them in one batch (the
    later write wins in the buffer), and a batch holding a key that an earlier batch still writes waits
    for it, so a put and a later delete of the same key land in that order. `flush()` returns once
    everything sent is written. A failure of a request is raised on the caller's thread by the next
    put/delete/flush, after the other requests in flight have stopped; so are `on_refused` callbacks
    delivered. After an exception escapes the caller, `close()` stops what is still in flight.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        backoff: Backoff,
        on_refused: Callable[[Item, str], None] | None = None,
        *,
        executor: Executor | None = None,
        writers: int = 1,
        pause: SharedPause | None = None,
        encoded_bodies: bool = False,
    ) -> None:
        self._client = client
        self._table = table
        self._on_refused = on_refused
        self._pause = pause or SharedPause(backoff)
        # One writer: each request is sent on the caller's thread (no pool, as before).
        self._executor = executor if writers > 1 else None
        self._writers = writers
        # True when `pre_encode_batch_writes(client)` took: batches are encoded here, see `_send`.
        self._encoded_bodies = encoded_bodies
        # Keyed by (pk, sk): BatchWriteItem refuses two requests for one key, the later record wins.
        self._pending: dict[_KeyOf, dict[str, Any]] = {}
        self._in_flight: dict[Future[list[Refusal]], list[_KeyOf]] = {}  # in order of sending
        self._holder: dict[_KeyOf, Future[list[Refusal]]] = {}  # the in-flight request writing a key
        self._finished = False  # set by a pool thread when a request ends: collect it at the next call
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._count_lock = threading.Lock()
        self.requests = 0

    def put(self, item: Item) -> None:
        self._add((item["pk"]["S"], item["sk"]["S"]), {"PutRequest": {"Item": item}})

    def delete(self, key: Key) -> None:
        self._add((key["pk"]["S"], key["sk"]["S"]), {"DeleteRequest": {"Key": key}})

    def flush(self) -> None:
        """Send what is buffered and wait until every request sent so far has been written."""
        self._check()
        if self._pending:
            self._send()
        self._collect(list(self._in_flight), every=True)

    def close(self) -> None:
        """Give up: drop what is buffered, stop retrying and wait for the requests in flight to end.

        For a caller that stops on an exception of its own: once `close()` returns, nothing of this
        writer reaches the table any more (so a lease released afterwards is not overtaken by it)."""
        self._pending = {}
        self._stopping.set()
        wait(list(self._in_flight))
        self._in_flight.clear()
        self._holder.clear()

    @property
    def closed(self) -> bool:
        return self._stopping.is_set()

    def __enter__(self) -> DynamoBatchWriter:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        """Leaving the block flushes; leaving it on an exception closes (see `close`)."""
        if error_type is None:
            self.flush()
        else:
            self.close()

    # --- caller's thread ---------------------------------------------------------------------------
    def _add(self, key: _KeyOf, request: dict[str, Any]) -> None:
        self._check()
        if self._finished:
            self._collect([], every=True)
        self._pending[key] = request
        if len(self._pending) >= BATCH_WRITE_LIMIT:
            self._send()

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._stopping.is_set():
            raise RuntimeError("this batch writer was closed")

    def _send(self) -> None:
        batch, self._pending = self._pending, {}
        items = list(batch.values())
        requests: _Batch = items
        if self._encoded_bodies:
            # Encoded now, on the caller's thread, while its items are still in the CPU caches (see the
            # module's docstring). Only the bytes stay in flight: the items are freed here, before a
            # garbage collection can promote them.
            requests = _encode(self._table, items)
        if self._executor is None:
            self._deliver(self._write(requests))
            return
        # Order per key: wait for the earlier requests still writing one of this batch's keys.
        earlier = {self._holder[key] for key in batch if key in self._holder}
        if earlier:
            self._collect(list(earlier), every=True)
        while len(self._in_flight) >= self._writers:  # bounded memory: the caller waits for a slot
            self._collect(list(self._in_flight), every=False)
        future = self._executor.submit(self._write, requests)
        future.add_done_callback(self._mark_finished)
        keys = list(batch)
        self._in_flight[future] = keys
        for key in keys:
            self._holder[key] = future

    def _collect(self, futures: list[Future[list[Refusal]]], *, every: bool) -> None:
        """Wait for `futures` (all, or the first to end), then retire every finished request in sending
        order: deliver its refusals, or stop everything and raise its failure."""
        if futures:
            wait(futures, return_when=ALL_COMPLETED if every else FIRST_COMPLETED)
        self._finished = False  # before looking: a request ending meanwhile sets it again
        for future in [f for f in self._in_flight if f.done()]:
            keys = self._in_flight.pop(future)
            for key in keys:
                if self._holder.get(key) is future:
                    del self._holder[key]
            failure = future.exception()
            if failure is not None:
                self.close()
                self._failure = failure
                raise failure
            self._deliver(future.result())

    def _mark_finished(self, _: Future[list[Refusal]]) -> None:
        self._finished = True

    def _deliver(self, refusals: list[Refusal]) -> None:
        assert self._on_refused is not None or not refusals
        for item, message in refusals:
            self._on_refused(item, message)  # type: ignore[misc]

    # --- a pool thread (or the caller's with one writer) --------------------------------------------
    def _write(self, batch: _Batch) -> list[Refusal]:
        """Write one batch until nothing is left unprocessed; returns the items refused as invalid."""
        for attempt in range(MAX_UNPROCESSED_ROUNDS + 1):
            self._pause.wait_turn()
            if self._stopping.is_set():
                return []
            with self._count_lock:
                self.requests += 1
            try:
                response = self._client.batch_write_item(RequestItems={self._table: _sendable(batch)})
            except ClientError as error:
                code = _error_code(error)
                if code == "ValidationException" and self._on_refused is not None:
                    return self._one_by_one(self._requests(batch))
                if code not in THROTTLING_CODES:
                    raise
            else:
                batch = response.get("UnprocessedItems", {}).get(self._table, [])
                if not batch:
                    return []
            if attempt < MAX_UNPROCESSED_ROUNDS:
                self._pause.pause(attempt)
        raise TransientStoreError(
            f"{len(self._requests(batch))} writes still unprocessed after {MAX_UNPROCESSED_ROUNDS} retries"
        )

    def _requests(self, batch: _Batch) -> list[dict[str, Any]]:
        if isinstance(batch, bytes):  # the rare paths only (refusals, giving up): decode the body again
            requests: list[dict[str, Any]] = json.loads(batch)["RequestItems"][self._table]
            return requests
        return batch

    def _one_by_one(self, batch: list[dict[str, Any]]) -> list[Refusal]:
        """DynamoDB refused the batch as invalid: find the item(s) at fault instead of failing forever."""
        refused: list[Refusal] = []
        for request in batch:
            try:
                if "PutRequest" in request:
                    self._client.put_item(TableName=self._table, Item=request["PutRequest"]["Item"])
                else:
                    self._client.delete_item(TableName=self._table, Key=request["DeleteRequest"]["Key"])
            except ClientError as error:
                if _error_code(error) != "ValidationException" or "PutRequest" not in request:
                    raise
                refused.append(
                    (request["PutRequest"]["Item"], str(error.response["Error"].get("Message", "")))
                )
        return refused


def pre_encode_batch_writes(client: Any) -> bool:
    """Encode BatchWriteItem bodies with `json.dumps` instead of botocore's model-driven serializer.

    The items are our converter's attribute values, already in DynamoDB's JSON form (S, N as text, BOOL,
    NULL, L, M: nothing the serializer would transform), and walking them through the service model is
    the largest client cost per record (54 us against 10 us for `json.dumps`, 25-item batches, measured
    with parameter validation off). The real parameters are encoded before botocore builds the request
    (`before-parameter-build`), an empty map goes through the serializer, and the encoded body replaces
    its output before the request is signed and sent (`before-call`), retries included. Call it before
    any thread uses the client (botocore: event handlers must not change while a client is in use).
    Returns whether it took (False for a test double): a writer may then hand the client encoded bodies."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:  # not a botocore client (a test double)
        return False
    events.register_first(
        "before-parameter-build.dynamodb.BatchWriteItem", _encode_body, unique_id="eventpipe-encode"
    )
    events.register_first("before-call.dynamodb.BatchWriteItem", _use_body, unique_id="eventpipe-use")
    return True


class _Encoded(list[dict[str, Any]]):
    """A batch's body encoded by the writer, passed as the table's (empty) list of requests."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body


def _sendable(batch: _Batch) -> list[dict[str, Any]]:
    return _Encoded(batch) if isinstance(batch, bytes) else batch


def _encode(table: str, requests: list[dict[str, Any]]) -> bytes:
    return json.dumps({"RequestItems": {table: requests}}, separators=(",", ":")).encode()


def _encode_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    tables = params["RequestItems"]
    encoded = next(iter(tables.values())) if len(tables) == 1 else None
    if isinstance(encoded, _Encoded):
        context[_BODY] = encoded.body
    else:
        context[_BODY] = json.dumps({"RequestItems": tables}, separators=(",", ":")).encode()
    params["RequestItems"] = {}


def _use_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    body = context.pop(_BODY, None)
    if body is not None:
        params["body"] = body


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
