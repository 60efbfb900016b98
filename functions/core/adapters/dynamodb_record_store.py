"""The records table on DynamoDB: `DynamoRecordStore`, the `RecordStore` port of the use cases.

Uses the low-level client with ready-made attribute values (no TypeSerializer on the hot path).
Object state items (the version guard) live under `pk = "object#<bucket>/<key>"`, `sk = "state"`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from botocore.exceptions import ClientError

from functions.core.adapters.dynamodb_batch_writer import (
    DEFAULT_WRITERS,
    MAX_UNPROCESSED_ROUNDS,
    Backoff,
    DynamoBatchWriter,
    SharedPause,
    pre_encode_batch_writes,
)
from functions.core.domain.object_state import (
    Acquired,
    Commit,
    LeaseLostError,
    ObjectState,
    Refused,
    TransientStoreError,
)
from functions.core.domain.table_layout import (
    NATURAL_KEY_SORT,
    POSITION_WIDTH,
    AttributeValue,
    Item,
    Key,
    position_sort_key,
    state_key,
)

BATCH_GET_LIMIT: Final = 100


class DynamoRecordStore:
    """`RecordStore` on a DynamoDB table with the contract's keys (`pk`, `sk`, GSI `by-owner`)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        writers: int = DEFAULT_WRITERS,
    ) -> None:
        if writers < 1:
            raise ValueError(f"writers must be at least 1, got {writers}")
        self._client = client
        self._table = table
        self._backoff = Backoff(sleep)
        pre_encode_batch_writes(client)
        # Shared by every writer of this store: one backoff and one thread pool per table and client.
        self._pause = SharedPause(self._backoff)
        self._writers = writers
        self._executor: ThreadPoolExecutor | None = None

    # --- object state (version guard and lease) -------------------------------------------------
    def acquire(
        self, object_id: str, sequencer: str, token: str, *, now: float, lease_seconds: float, natural: bool
    ) -> Acquired | Refused:
        updates = "SET lease_token = :t, lease_expires = :exp, lease_sequencer = :s, dirty = :yes"
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
        }
        sets = [
            "sequencer = :s",
            "#status = :status",
            "event_id = :event",
            "committed_at = :at",
            "record_count = :records",
            "rejected_count = :rejected",
            "last_position = :last",
            "dirty = :no",
        ]
        removes = ["lease_token", "lease_expires", "lease_sequencer"]
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
                    " REMOVE lease_token, lease_expires, lease_sequencer"
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
        """A batch writer with up to `writers` requests in flight; `on_refused` receives items DynamoDB
        rejects as invalid (else they raise), on the caller's thread."""
        if self._writers > 1 and self._executor is None:  # threads start on first use, kept while warm
            self._executor = ThreadPoolExecutor(self._writers, thread_name_prefix="batch-writer")
        return DynamoBatchWriter(
            self._client,
            self._table,
            self._backoff,
            on_refused,
            executor=self._executor,
            writers=self._writers,
            pause=self._pause,
        )

    def positions_after(self, partition: str, position: int) -> Iterator[Key]:
        """Keys of position-keyed items of `partition` beyond `position` (strongly consistent)."""
        yield from self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": partition},
                ":low": {"S": position_sort_key(position + 1)},
                ":high": {"S": "9" * POSITION_WIDTH},
            },
            ConsistentRead=True,
        )

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
