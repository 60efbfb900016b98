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
    Checkpoint,
    Commit,
    LeaseLostError,
    ObjectState,
    OthersWritingError,
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

# A fan-out's (or continuation's) registry: a new attempt that takes the lease removes it, so no earlier
# hand-over can look like one that still holds the object (object_lease._supersede_idle_fanout).
FANOUT_ATTRIBUTES: Final = (
    "fanout_token",
    "fanout_ranges",
    "fanout_done",
    "fanout_finalizer",
    "fanout_writers",
)
# What one processing attempt records in the state item; a commit ends the attempt and removes them.
ATTEMPT_ATTRIBUTES: Final = (
    "writer_sequencer",
    "progress_position",
    "progress_sequencer",
    "progress_version",
    *FANOUT_ATTRIBUTES,
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
        self._encoded_bodies = pre_encode_batch_writes(client)
        # Shared by every writer of this store: one backoff and one thread pool per table and client.
        self._pause = SharedPause(self._backoff)
        self._writers = writers
        self._executor: ThreadPoolExecutor | None = None

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
        updates += f" REMOVE {', '.join(FANOUT_ATTRIBUTES)}"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=updates,
                ConditionExpression=(
                    "(attribute_not_exists(sequencer) OR sequencer <= :s)"
                    " AND (attribute_not_exists(pending_sequencer) OR pending_sequencer <= :s)"
                    " AND (attribute_not_exists(lease_token) OR lease_expires < :now"
                    # A retry reclaims its own lease, unless that attempt handed the object over (its
                    # continuation or fan-out writes under the same token now).
                    " OR (lease_token = :t AND (attribute_not_exists(fanout_token) OR fanout_token <> :t)))"
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

    def commit(self, object_id: str, token: str, commit: Commit, *, writer: str | None = None) -> None:
        """Commit under the lease `token`; a fan-out's `writer` commits only as its sole writer."""
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
        condition, names = "lease_token = :t", {"#status": "status"}
        if writer is not None:
            condition += " AND size(fanout_writers) = :one AND attribute_exists(fanout_writers.#w)"
            names["#w"] = writer
            values[":one"] = {"N": "1"}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            if writer is not None and ObjectState.from_item(error.response.get("Item")).lease_token == token:
                raise OthersWritingError(f"another worker of the fan-out of {object_id} is writing") from None
            raise LeaseLostError(f"lease on {object_id} expired before commit") from None

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

    # --- fan-out (fan_out.py, range_ingest.py): one attempt's ranges, written by several workers ----
    # Under the fan-out's lease token, each worker registers in `fanout_writers` before it writes and
    # leaves when it is done; nothing takes the object over or commits while another registered worker
    # may still be writing (one whose deadline has not passed), so no late write of a fan-out can land
    # after a commit or a takeover.
    def start_fanout(self, object_id: str, token: str, *, ranges: int, lease_expires: float) -> None:
        self._update_held(
            object_id,
            token,
            "SET fanout_token = :t, fanout_ranges = :n, fanout_done = :none, lease_expires = :exp,"
            " fanout_writers = if_not_exists(fanout_writers, :none) REMOVE fanout_finalizer",
            {":n": {"N": str(ranges)}, ":none": {"M": {}}, ":exp": {"N": repr(lease_expires)}},
        )

    def join_fanout(
        self, object_id: str, token: str, writer: str, *, index: int, deadline: float
    ) -> ObjectState | None:
        """Register `writer` (until `deadline`) as writing for the fan-out `token`, extending the lease to
        cover it; None if that fan-out no longer holds the object or another range is committing."""
        for extend in (True, False):
            condition = (
                "lease_token = :t AND fanout_token = :t"
                " AND (attribute_not_exists(fanout_finalizer) OR fanout_finalizer = :i)"
            )
            update = "SET fanout_writers.#w = :d"
            if extend:
                update += ", lease_expires = :d"
                condition += " AND lease_expires <= :d"
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key=state_key(object_id),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#w": writer},
                    ExpressionAttributeValues={
                        ":t": {"S": token},
                        ":i": {"N": str(index)},
                        ":d": {"N": repr(deadline)},
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if _code(error) != "ConditionalCheckFailedException":
                    raise
                if extend and _fanout_holds(error.response.get("Item"), token, index):
                    continue  # the lease already reaches further than this writer: keep it
                return None
            return ObjectState.from_item(response.get("Attributes"))
        return None

    def leave_fanout(
        self,
        object_id: str,
        token: str,
        writer: str,
        *,
        done: RangeSummary | None = None,
        gone: Iterable[str] = (),
        drop_claim: bool = False,
    ) -> ObjectState | None:
        """`writer` stops writing (having finished range `done`, if given); writers surely `gone` are
        removed too. The state after, or None if the fan-out no longer holds the object."""
        sets: list[str] = []
        values: dict[str, Any] = {":t": {"S": token}}
        names = {"#w": writer}
        if done is not None:
            sets.append("fanout_done.#index = :summary")
            values[":summary"] = done.to_attribute()
            names["#index"] = str(done.index)
        removes = ["fanout_writers.#w", *_name_all(gone, names)]
        if drop_claim:
            removes.append("fanout_finalizer")
        update = (f"SET {', '.join(sets)} " if sets else "") + f"REMOVE {', '.join(removes)}"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=update,
                ConditionExpression="lease_token = :t AND fanout_token = :t",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            return None
        return ObjectState.from_item(response.get("Attributes"))

    def claim_finalize(
        self,
        object_id: str,
        token: str,
        writer: str,
        *,
        index: int,
        ranges: int,
        deadline: float,
        gone: Iterable[str],
    ) -> bool:
        """Whether `writer` (of range `index`) may commit the fan-out: every range is done, no other
        writer is registered but those surely `gone` (removed now), and nobody claimed it before."""
        names = {"#w": writer}
        gone_names = _name_all(gone, names)
        condition = [
            "lease_token = :t AND fanout_token = :t AND attribute_not_exists(fanout_finalizer)",
            "size(fanout_done) = :n",
            "size(fanout_writers) = :k",
            *(f"attribute_exists({name})" for name in gone_names),
        ]
        update = "SET fanout_finalizer = :i, fanout_writers.#w = :d"
        if gone_names:
            update += f" REMOVE {', '.join(gone_names)}"
        return self._conditional(
            object_id,
            update,
            " AND ".join(condition),
            names,
            {
                ":t": {"S": token},
                ":i": {"N": str(index)},
                ":d": {"N": repr(deadline)},
                ":k": {"N": str(len(gone_names))},
                ":n": {"N": str(ranges)},
            },
        )

    def abandon_fanout(self, object_id: str, token: str, writer: str | None, *, gone: Iterable[str]) -> bool:
        """Give the fan-out's lease back (dirty) if nobody but `writer` and writers surely `gone` is
        registered; otherwise only `writer` leaves (the last one to leave gives the lease back)."""
        names: dict[str, str] = {}
        mine = []
        if writer is not None:
            names["#w"] = writer
            mine = ["fanout_writers.#w"]
        gone_names = _name_all(gone, names)
        removed = [*mine, *gone_names]
        condition = [
            "lease_token = :t AND fanout_token = :t",
            "(attribute_not_exists(fanout_writers) OR size(fanout_writers) = :k)",
            *(f"attribute_exists({name})" for name in removed),
        ]
        released = self._conditional(
            object_id,
            "SET dirty = :yes REMOVE lease_token, lease_expires, lease_sequencer"
            + "".join(f", {name}" for name in removed),
            " AND ".join(condition),
            names,
            {":t": {"S": token}, ":yes": {"BOOL": True}, ":k": {"N": str(len(removed))}},
        )
        if not released and writer is not None:
            self.leave_fanout(object_id, token, writer)
        return released

    def _conditional(
        self, object_id: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=state_key(object_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            return False
        return True

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
            encoded_bodies=self._encoded_bodies,
        )

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


def _fanout_holds(item: Item | None, token: str, index: int) -> bool:
    state = ObjectState.from_item(item)
    return (
        state.lease_token == token and state.fanout_token == token and state.fanout_finalizer in (None, index)
    )


def _name_all(writers: Iterable[str], names: dict[str, str]) -> list[str]:
    """Attribute paths `fanout_writers.#gN` for `writers`, their placeholders added to `names`."""
    paths = []
    for number, writer in enumerate(writers):
        names[f"#g{number}"] = writer
        paths.append(f"fanout_writers.#g{number}")
    return paths


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
