"""The records table on DynamoDB: `DynamoRecordStore`, the `RecordStore` port of the use cases.

Uses the low-level client with ready-made attribute values (no TypeSerializer on the hot path).
Object state items (the version guard) live under `pk = "object#<bucket>/<key>"`, `sk = "state"`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from botocore.exceptions import ClientError

from functions.core.domain.object_state import (
    Acquired,
    Checkpoint,
    Commit,
    LeaseLostError,
    ObjectState,
    RangeSummary,
    Refused,
    TransientStoreError,
)
from functions.core.domain.table_layout import (
    LAYOUT,
    NATURAL_KEY_SORT,
    POSITION_WIDTH,
    AttributeValue,
    Item,
    Key,
    position_sort_key,
    state_key,
)

# What one processing attempt records in the state item; a commit ends the attempt and removes them.
ATTEMPT_ATTRIBUTES: Final = (
    "writer_sequencer",
    "progress_position",
    "progress_sequencer",
    "progress_version",
    "fanout_token",
    "fanout_ranges",
    "fanout_done",
    "fanout_finalizer",
)
BATCH_WRITE_LIMIT: Final = 25
BATCH_GET_LIMIT: Final = 100
MAX_UNPROCESSED_ROUNDS: Final = 8


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog), bounded per round."""

    def __init__(self, sleep: Callable[[float], None], base: float = 0.05, cap: float = 5.0) -> None:
        self._sleep = sleep
        self._base = base
        self._cap = cap

    def pause(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(self._cap, self._base * 2**attempt)))  # noqa: S311 - jitter


class DynamoBatchWriter:
    """Buffers puts/deletes and sends them 25 per BatchWriteItem, retrying UnprocessedItems."""

    def __init__(
        self, client: Any, table: str, backoff: Backoff, on_refused: Callable[[Item, str], None] | None = None
    ) -> None:
        self._client = client
        self._table = table
        self._backoff = backoff
        self._on_refused = on_refused
        # Keyed by (pk, sk): BatchWriteItem refuses two requests for one key, the later record wins.
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests = 0

    def put(self, item: Item) -> None:
        self._add((item["pk"]["S"], item["sk"]["S"]), {"PutRequest": {"Item": item}})

    def delete(self, key: Key) -> None:
        self._add((key["pk"]["S"], key["sk"]["S"]), {"DeleteRequest": {"Key": key}})

    def _add(self, key: tuple[str, str], request: dict[str, Any]) -> None:
        self._pending[key] = request
        if len(self._pending) >= BATCH_WRITE_LIMIT:
            self._send()

    def flush(self) -> None:
        if self._pending:
            self._send()

    def _send(self) -> None:
        batch = list(self._pending.values())
        self._pending = {}
        for attempt in range(MAX_UNPROCESSED_ROUNDS + 1):
            self.requests += 1
            try:
                response = self._client.batch_write_item(RequestItems={self._table: batch})
            except ClientError as error:
                if _code(error) != "ValidationException" or self._on_refused is None:
                    raise
                self._one_by_one(batch)
                return
            batch = response.get("UnprocessedItems", {}).get(self._table, [])
            if not batch:
                return
            if attempt < MAX_UNPROCESSED_ROUNDS:
                self._backoff.pause(attempt)
        raise TransientStoreError(
            f"{len(batch)} writes still unprocessed after {MAX_UNPROCESSED_ROUNDS} retries"
        )

    def _one_by_one(self, batch: list[dict[str, Any]]) -> None:
        """DynamoDB refused the batch as invalid: find the item(s) at fault instead of failing forever."""
        for request in batch:
            try:
                if "PutRequest" in request:
                    self._client.put_item(TableName=self._table, Item=request["PutRequest"]["Item"])
                else:
                    self._client.delete_item(TableName=self._table, Key=request["DeleteRequest"]["Key"])
            except ClientError as error:
                if _code(error) != "ValidationException" or "PutRequest" not in request:
                    raise
                assert self._on_refused is not None
                self._on_refused(
                    request["PutRequest"]["Item"], str(error.response["Error"].get("Message", ""))
                )


class DynamoRecordStore:
    """`RecordStore` on a DynamoDB table with the contract's keys (`pk`, `sk`, GSI `by-owner`)."""

    def __init__(self, client: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._table = table
        self._backoff = Backoff(sleep)

    # --- object state (version guard and lease) -------------------------------------------------
    def acquire(
        self, object_id: str, sequencer: str, token: str, *, now: float, lease_seconds: float, natural: bool
    ) -> Acquired | Refused:
        updates = (
            "SET lease_token = :t, lease_expires = :exp, lease_sequencer = :s, writer_sequencer = :s,"
            " dirty = :yes"
        )
        if natural:
            updates += ", natural_owned = :yes"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=updates,
                ConditionExpression=(
                    "(attribute_not_exists(sequencer) OR sequencer <= :s)"
                    " AND (attribute_not_exists(pending_sequencer) OR pending_sequencer <= :s)"
                    " AND (attribute_not_exists(lease_token) OR lease_expires < :now OR lease_token = :t)"
                ),
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    ":s": {"S": sequencer},
                    ":yes": {"BOOL": True},
                    ":now": {"N": repr(now)},
                    ":exp": {"N": repr(now + lease_seconds)},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            current = ObjectState.from_item(error.response.get("Item"))
            return Refused(current=current, stale=current.is_newer_than(sequencer))
        return Acquired(prior=ObjectState.from_item(response.get("Attributes")))

    def announce(self, object_id: str, sequencer: str) -> None:
        """Record that a newer event waits, so the current holder stops early and older events skip."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression="SET pending_sequencer = :s",
                ConditionExpression="attribute_not_exists(pending_sequencer) OR pending_sequencer < :s",
                ExpressionAttributeValues={":s": {"S": sequencer}},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise

    def superseded(self, object_id: str, sequencer: str) -> bool:
        response = self._client.get_item(
            TableName=self._table,
            Key=state_key(object_id),
            ConsistentRead=True,
            ProjectionExpression="sequencer, pending_sequencer",
        )
        return ObjectState.from_item(response.get("Item")).is_newer_than(sequencer)

    def release(self, object_id: str, token: str, *, dirty: bool) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression="SET dirty = :d REMOVE lease_token, lease_expires, lease_sequencer",
                ConditionExpression="lease_token = :t",
                ExpressionAttributeValues={":t": {"S": token}, ":d": {"BOOL": dirty}},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise

    def commit(self, object_id: str, token: str, commit: Commit) -> None:
        values: dict[str, AttributeValue] = {
            ":t": {"S": token},
            ":s": {"S": commit.sequencer},
            ":status": {"S": commit.status},
            ":event": {"S": commit.event_id},
            ":at": {"S": commit.committed_at},
            ":records": {"N": str(commit.record_count)},
            ":rejected": {"N": str(commit.rejected_count)},
            ":last": {"N": str(commit.last_position)},
            ":no": {"BOOL": False},
            ":layout": {"N": str(LAYOUT)},
        }
        sets = [
            "layout = :layout",
            "sequencer = :s",
            "#status = :status",
            "event_id = :event",
            "committed_at = :at",
            "record_count = :records",
            "rejected_count = :rejected",
            "last_position = :last",
            "dirty = :no",
        ]
        removes = ["lease_token", "lease_expires", "lease_sequencer", *ATTEMPT_ATTRIBUTES]
        for name, value in (
            ("version_id", commit.version_id),
            ("etag", commit.etag),
            ("dataset", commit.dataset),
        ):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": value}
        if not commit.natural_owned:
            removes.append("natural_owned")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression="lease_token = :t",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                raise LeaseLostError(f"lease on {object_id} expired before commit") from None
            raise

    def advance(
        self, object_id: str, token: str, *, sequencer: str, event_id: str, committed_at: str
    ) -> None:
        """Commit an event that proved the table already mirrors what is current: only the sequencer
        (and who moved it) changes, so no older event can win afterwards."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=(
                    "SET sequencer = :s, event_id = :event, committed_at = :at, dirty = :no"
                    f" REMOVE lease_token, lease_expires, lease_sequencer, {', '.join(ATTEMPT_ATTRIBUTES)}"
                ),
                ConditionExpression="lease_token = :t",
                ExpressionAttributeValues={
                    ":t": {"S": token},
                    ":s": {"S": sequencer},
                    ":event": {"S": event_id},
                    ":at": {"S": committed_at},
                    ":no": {"BOOL": False},
                },
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                raise LeaseLostError(f"lease on {object_id} expired before commit") from None
            raise

    def checkpoint(self, object_id: str, token: str, checkpoint: Checkpoint) -> None:
        """Record how far this attempt has durably written (a retry of the same event resumes there)."""
        self._update_held(
            object_id,
            token,
            "SET progress_position = :p, progress_sequencer = :s, progress_version = :v",
            {
                ":p": {"N": str(checkpoint.position)},
                ":s": {"S": checkpoint.sequencer},
                ":v": {"S": checkpoint.content},
            },
        )

    # --- fan-out (fan_out.py): one attempt's ranges, done by range workers under the same lease ---------
    def start_fanout(self, object_id: str, token: str, *, ranges: int, lease_expires: float) -> None:
        self._update_held(
            object_id,
            token,
            "SET fanout_token = :t, fanout_ranges = :n, fanout_done = :none, lease_expires = :exp"
            " REMOVE fanout_finalizer",
            {":n": {"N": str(ranges)}, ":none": {"M": {}}, ":exp": {"N": repr(lease_expires)}},
        )

    def renew_fanout(self, object_id: str, token: str, *, lease_expires: float) -> ObjectState | None:
        """Extend the lease of the fan-out `token`; None if that fan-out no longer holds the object."""
        return self._update_fanout(
            object_id, token, "SET lease_expires = :exp", {":exp": {"N": repr(lease_expires)}}
        )

    def range_done(self, object_id: str, token: str, summary: RangeSummary) -> ObjectState | None:
        """Record that a range of the fan-out `token` is written (idempotent); the state after, or None."""
        return self._update_fanout(
            object_id,
            token,
            "SET fanout_done.#index = :summary",
            {":summary": summary.to_attribute()},
            names={"#index": str(summary.index)},
        )

    def claim_finalize(self, object_id: str, token: str, index: int) -> bool:
        """Whether the worker of range `index` may finalize the fan-out: the first to ask does, and so
        does a retry of the same range (its earlier attempt may have crashed while finalizing)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression="SET fanout_finalizer = :i",
                ConditionExpression=(
                    "lease_token = :t AND fanout_token = :t"
                    " AND (attribute_not_exists(fanout_finalizer) OR fanout_finalizer = :i)"
                ),
                ExpressionAttributeValues={":t": {"S": token}, ":i": {"N": str(index)}},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _update_fanout(
        self,
        object_id: str,
        token: str,
        update: str,
        values: dict[str, AttributeValue],
        names: dict[str, str] | None = None,
    ) -> ObjectState | None:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=update,
                ConditionExpression="lease_token = :t AND fanout_token = :t",
                ExpressionAttributeValues={":t": {"S": token}, **values},
                **({"ExpressionAttributeNames": names} if names else {}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            return None
        return ObjectState.from_item(response.get("Attributes"))

    def _update_held(
        self, object_id: str, token: str, update: str, values: dict[str, AttributeValue]
    ) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=update,
                ConditionExpression="lease_token = :t",
                ExpressionAttributeValues={":t": {"S": token}, **values},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                raise LeaseLostError(f"lease on {object_id} was taken over") from None
            raise

    def has_state(self, object_id: str) -> bool:
        """Whether some event of the object was ever committed (a lease alone leaves no trace here)."""
        response = self._client.get_item(
            TableName=self._table,
            Key=state_key(object_id),
            ConsistentRead=True,
            ProjectionExpression="sequencer",
        )
        return "sequencer" in response.get("Item", {})

    # --- records ----------------------------------------------------------------------------------
    def writer(self, on_refused: Callable[[Item, str], None] | None = None) -> DynamoBatchWriter:
        """A batch writer; `on_refused` receives items DynamoDB rejects as invalid (else they raise)."""
        return DynamoBatchWriter(self._client, self._table, self._backoff, on_refused)

    def positions_after(self, partition: str, position: int, owner: str) -> Iterator[Key]:
        """Keys of position-keyed items of `partition` beyond `position` that `owner` wrote (strongly
        consistent). The owner check keeps a layout-1 item of another object out (table_layout.py)."""
        for item in self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": partition},
                ":low": {"S": position_sort_key(position + 1)},
                ":high": {"S": "9" * POSITION_WIDTH},
            },
            ProjectionExpression="pk, sk, #owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ConsistentRead=True,
        ):
            if item.get("owner", {}).get("S") == owner:
                yield {"pk": item["pk"], "sk": item["sk"]}

    def owned_natural_keys(self, owner: str) -> Iterator[Key]:
        """Keys of natural-key items the GSI lists for `owner` (eventually consistent: verify before use)."""
        for key in self._query(
            IndexName="by-owner",
            KeyConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
        ):
            if key["sk"]["S"] == NATURAL_KEY_SORT:
                yield {"pk": key["pk"], "sk": key["sk"]}

    def delete_owned(self, keys: Iterable[Key], owner: str) -> int:
        """Delete the items among `keys` that `owner` still owns.

        A consistent BatchGetItem filters first (cheap reads), then each delete carries the same
        condition, so an item another object has taken over meanwhile is never removed. (Sequencers
        are not compared: they order the events of one key only, and the caller has already left out
        the keys its own version wrote.)
        """
        deleted = 0
        for chunk in _chunks(keys, BATCH_GET_LIMIT):
            for item in self._batch_get(chunk):
                if item.get("owner", {}).get("S") != owner:
                    continue
                try:
                    self._client.delete_item(
                        TableName=self._table,
                        Key={"pk": item["pk"], "sk": item["sk"]},
                        ConditionExpression="#owner = :owner",
                        ExpressionAttributeNames={"#owner": "owner"},
                        ExpressionAttributeValues={":owner": {"S": owner}},
                    )
                    deleted += 1
                except ClientError as error:
                    if _code(error) != "ConditionalCheckFailedException":
                        raise
        return deleted

    def _batch_get(self, keys: list[Key]) -> Iterator[Item]:
        request: dict[str, Any] = {
            self._table: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "pk, sk, #owner",
                "ExpressionAttributeNames": {"#owner": "owner"},
            }
        }
        for attempt in range(MAX_UNPROCESSED_ROUNDS + 1):
            response = self._client.batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(self._table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            if attempt < MAX_UNPROCESSED_ROUNDS:
                self._backoff.pause(attempt)
        raise TransientStoreError("BatchGetItem keys still unprocessed after bounded retries")

    def _query(self, **arguments: Any) -> Iterator[Key]:
        arguments = {"TableName": self._table, "ProjectionExpression": "pk, sk", **arguments}
        while True:
            response = self._client.query(**arguments)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            arguments["ExclusiveStartKey"] = last


def _chunks(keys: Iterable[Key], size: int) -> Iterator[list[Key]]:
    chunk: list[Key] = []
    for key in keys:
        chunk.append(key)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
