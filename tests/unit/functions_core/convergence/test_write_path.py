"""Issue 9's counterexamples, each replayed on the emulated AWS (moto): version histories delivered in
the orders that broke convergence, duplicate natural keys, an index that lags, objects S3 can never
serve, quotes of refused records, and keys in either encoding."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.adapters.s3_object_reader import S3ObjectReader
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.object_lease import ObjectBusyError

from ..conftest import BUCKET, TABLE, World, parse

KEY = "data/a.jsonl"


def jsonl(*records: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def rows(*records: Any, key: str = KEY) -> dict[tuple[str, str], Any]:
    return {(key, f"{position:012d}"): record for position, record in enumerate(records, start=1)}


def deliver(world: World, event: dict[str, Any], **overrides: Any) -> Any:
    services = world.services(**overrides)
    parsed = parse(event)
    return (ingest_object if parsed.is_created else delete_object)(services, parsed)


# --- orderings of one key's version history ------------------------------------------------------------
@pytest.mark.parametrize("order", [(0, 2, 1), (2, 0, 1), (2, 1, 0), (1, 2, 0)])
def test_removing_a_delete_marker_restores_the_object_in_any_delivery_order(world: World, order: Any) -> None:
    put = world.put(KEY, jsonl({"v": 1}))
    marker = world.delete(KEY)
    unmarked = world.delete_version(KEY, marker["detail"]["object"]["version-id"])  # V1 is current again
    events = [put, marker, unmarked]

    for index in order:
        deliver(world, events[index])

    assert world.records() == rows({"v": 1})


class ReaderThatLetsOthersIn(S3ObjectReader):
    """Runs `meanwhile` the first time it opens an object: another delivery while this one holds the lease."""

    def __init__(self, client: Any, meanwhile: Any) -> None:
        super().__init__(client)
        self._meanwhile = meanwhile

    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> Any:
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile:
            meanwhile()
        return super().open(bucket, key, version_id=version_id, etag=etag)


def test_a_deleted_current_version_restores_the_previous_one_after_a_busy_lease(world: World) -> None:
    # PUT V1, V2, V3, then permanently delete V3 (V2 is current). While e1 holds the lease, e3 announces
    # itself; e2 is then stale, e3 finds its version gone: only e4 can tell the table that V2 is current.
    e1, e2, e3 = (world.put(KEY, jsonl(*[{"v": n}] * n)) for n in (1, 2, 3))
    e4 = world.delete_version(KEY, e3["detail"]["object"]["version-id"])
    announced: list[str] = []

    def e3_finds_the_object_busy() -> None:
        with pytest.raises(ObjectBusyError):
            deliver(world, e3)
        announced.append("e3")

    first = deliver(world, e1, objects=ReaderThatLetsOthersIn(world.s3, e3_finds_the_object_busy))
    outcomes = [first.status] + [deliver(world, event).status for event in (e2, e3, e4)]

    assert announced == ["e3"]
    assert outcomes == ["ingested", "stale", "stale", "restored"]
    assert world.records() == rows({"v": 2}, {"v": 2})


def test_the_property_tests_counterexample_ends_with_the_current_version(world: World) -> None:
    # put x4, delete (marker), delete a noncurrent version, delete the current version (the marker).
    puts = [world.put(KEY, jsonl({"n": n})) for n in range(4)]
    marker = world.delete(KEY)
    noncurrent = world.delete_version(KEY, puts[1]["detail"]["object"]["version-id"])
    unmarked = world.delete_version(KEY, marker["detail"]["object"]["version-id"])

    for event in [*puts, marker, noncurrent, unmarked]:
        deliver(world, event)

    assert world.records() == rows({"n": 3})


# --- natural keys ----------------------------------------------------------------------------------------
def person(email: str, name: str) -> dict[str, str]:
    return {"Name": name, "Role": "DevOps", "Email": email}


def test_a_natural_key_twice_in_one_object_keeps_the_later_record_and_reports_the_earlier(
    world: World,
) -> None:
    first, other, again = person("a@x.io", "first"), person("b@x.io", "other"), person("a@x.io", "again")
    event = world.put("people/team.jsonl", jsonl(first, other, again))

    outcome = deliver(world, event)

    assert (outcome.records_written, outcome.records_rejected) == (2, 1)
    assert {pk: data["Name"] for (pk, _), data in world.records().items()} == {
        "people#a@x.io": "again",
        "people#b@x.io": "other",
    }
    [entry] = world.report(outcome.report_key)
    assert (entry["position"], entry["reason"]) == (1, "duplicate_natural_key")
    assert "position 3" in entry["detail"]
    assert json.loads(entry["record"]) == first


def test_a_duplicate_natural_key_in_a_json_array_quotes_the_earlier_element_as_written(world: World) -> None:
    text = (
        '[{"Name": "first", "Role": "DevOps", "Email": "a@x.io", "n": 1.50},\n'
        ' {"Name": "again", "Role": "DevOps", "Email": "a@x.io"}]'
    )

    outcome = deliver(world, world.put("people/team.json", text))

    [entry] = world.report(outcome.report_key)
    assert (entry["position"], entry["reason"]) == (1, "duplicate_natural_key")
    assert entry["record"] == '{"Name": "first", "Role": "DevOps", "Email": "a@x.io", "n": 1.50}'


class LaggingIndexStore(DynamoRecordStore):
    """The by-owner index has not caught up yet the first time it is read (it is eventually consistent)."""

    lagged = True

    def owned_natural_keys(self, owner: str) -> Any:
        if self.lagged:
            self.lagged = False
            return iter(())
        return super().owned_natural_keys(owner)


def test_a_leftover_the_lagging_index_missed_is_removed_by_the_objects_next_event(world: World) -> None:
    key = "people/team.jsonl"
    deliver(world, world.put(key, jsonl(person("a@x.io", "a"))))
    deletion = world.delete(key)
    deliver(world, deletion, store=LaggingIndexStore(world.dynamodb, TABLE))
    assert world.records() != {}  # the index missed it: the item is still there

    deliver(world, {**deletion, "replay-name": "a-later-replay"})

    assert world.records() == {}


# --- permanent read errors ----------------------------------------------------------------------------
class RefusingS3:
    """A real S3 client whose GetObject answers with a fixed error, as S3 does for such an object."""

    def __init__(self, client: Any, code: str, message: str, status: int) -> None:
        self._client, self.code, self.message, self.status = client, code, message, status
        self.reads = 0

    def get_object(self, **arguments: Any) -> Any:
        self.reads += 1
        raise ClientError(
            {
                "Error": {"Code": self.code, "Message": self.message},
                "ResponseMetadata": {"HTTPStatusCode": self.status},
            },
            "GetObject",
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize(
    ("code", "message", "status"),
    [
        ("InvalidRequest", "The object was stored using a form of Server Side Encryption.", 400),
        ("AccessDenied", "User is not authorized to perform: kms:Decrypt on the resource", 403),
        ("KMS.DisabledException", "arn:aws:kms:us-east-1:111122223333:key/x is disabled.", 400),
    ],
    ids=["sse-c", "kms-denied", "kms-disabled"],
)
def test_an_object_s3_can_never_serve_is_reported_once_not_retried(
    world: World, code: str, message: str, status: int
) -> None:
    deliver(world, world.put(KEY, jsonl({"v": 1})))
    event = world.put(KEY, jsonl({"v": 2}))
    refusing = RefusingS3(world.s3, code, message, status)

    outcome = deliver(world, event, objects=S3ObjectReader(refusing))
    replayed = deliver(world, {**event, "replay-name": "r"}, objects=S3ObjectReader(refusing))

    assert (outcome.status, replayed.status, refusing.reads) == ("unreadable", "unreadable", 1)
    [entry] = world.report(outcome.report_key)
    assert (entry["position"], entry["reason"]) == (0, "unreadable_object")
    assert code in entry["detail"]
    assert world.records() == {}  # the previous version's records are not the object's any more
    assert world.item(f"object#{BUCKET}/{KEY}", "state")["status"] == "unreadable"


def test_an_archived_object_is_reported_as_unreadable(world: World) -> None:
    put = world.put(KEY, jsonl({"v": 1}))
    source = {"Bucket": BUCKET, "Key": KEY, "VersionId": put["detail"]["object"]["version-id"]}
    archived = world.s3.copy_object(Bucket=BUCKET, Key=KEY, CopySource=source, StorageClass="GLACIER")
    event = {**put, "id": "archived-copy"}
    event["detail"] = {**put["detail"], "reason": "CopyObject"}
    event["detail"]["object"] = {
        **put["detail"]["object"],
        "version-id": archived["VersionId"],
        "sequencer": world.next_sequencer(),
    }

    outcome = deliver(world, event)

    assert outcome.status == "unreadable"
    [entry] = world.report(outcome.report_key)
    assert "InvalidObjectState" in entry["detail"]


def test_a_plain_access_denied_is_raised_for_lambda_to_retry(world: World) -> None:
    event = world.put(KEY, jsonl({"v": 1}))
    refusing = RefusingS3(world.s3, "AccessDenied", "Access Denied", 403)

    with pytest.raises(ClientError):
        deliver(world, event, objects=S3ObjectReader(refusing))


# --- quotes ---------------------------------------------------------------------------------------------
def test_a_record_dynamodb_refuses_is_quoted_as_written(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.core.domain.records as records

    monkeypatch.setattr(records, "MAX_ITEM_BYTES", 10 * 1024 * 1024)  # as if our size rule had a gap
    huge = '{"blob": "' + "x" * 500_000 + '", "n": 1.50}'

    outcome = deliver(world, world.put(KEY, jsonl({"v": 1}) + huge + "\n"))

    [entry] = world.report(outcome.report_key)
    assert entry["reason"] == "refused_by_dynamodb"
    assert entry["record"] == huge[: len(entry["record"])]
    assert entry["record_truncated"]


# --- key encodings -------------------------------------------------------------------------------------
KEYS = [
    "data/with space.jsonl",
    "data/plus+sign.jsonl",
    "data/100%.jsonl",
    "data/équipe.jsonl",
    "data/a b+c%d é.jsonl",
]
ENCODINGS = {
    "form-encoded": None,  # as S3's classic notifications and our fixtures: space -> '+'
    "percent-encoded": lambda key: quote(key, safe="/+"),  # space -> %20, '+' kept
    "unencoded": lambda key: key,
}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("key", KEYS)
def test_keys_are_read_whatever_their_encoding(world: World, key: str, encoding: str) -> None:
    def encoded(event: dict[str, Any]) -> dict[str, Any]:
        if ENCODINGS[encoding] is not None:
            event["detail"]["object"]["key"] = ENCODINGS[encoding](key)
        return event

    put = encoded(world.put(key, jsonl({"k": key})))
    outcome = deliver(world, put)
    assert (outcome.status, world.records()) == ("ingested", rows({"k": key}, key=key))

    deletion = encoded(world.delete(key))
    assert deliver(world, deletion).status == "deleted"
    assert world.records() == {}


def test_deleting_a_key_never_touches_a_live_sibling_whose_name_reads_the_same(
    unversioned_world: World,
) -> None:
    # "x y" arrives form-encoded as "x+y"; the object literally named "x+y" arrives as "x%2By". Deleting
    # "x y" must not be taken for a deletion of "x+y", although "x+y" is one reading of its key.
    world = unversioned_world
    for key in ("data/x y.jsonl", "data/x+y.jsonl"):
        deliver(world, world.put(key, jsonl({"k": key})))

    deliver(world, world.delete("data/x y.jsonl"))

    assert world.records() == rows({"k": "data/x+y.jsonl"}, key="data/x+y.jsonl")
