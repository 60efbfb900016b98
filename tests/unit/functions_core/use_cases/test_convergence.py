"""The table mirrors the bucket: overwrite, delete, duplicates, out-of-order and replayed events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.core.domain.object_state import Acquired
from functions.core.domain.table_layout import STATE_PREFIX, record_key
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.object_lease import ObjectBusyError, lease_token
from functions.core.use_cases.ports import LeasePolicy

from ..conftest import BUCKET, TABLE, World, load_event, parse


def jsonl(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_records_are_keyed_by_object_key_and_zero_padded_position(world: World) -> None:
    event = world.put("data/a.jsonl", jsonl({"n": 1}, {"n": 2}))

    outcome = ingest_object(world.services(), parse(event))

    assert outcome.status == "ingested"
    assert world.records() == {
        ("data/a.jsonl", "000000000001"): {"n": 1},
        ("data/a.jsonl", "000000000002"): {"n": 2},
    }


def test_items_carry_provenance(world: World) -> None:
    event = world.put("data/a.jsonl", jsonl({"n": 1}), replay="replay-1")
    detail = event["detail"]["object"]

    ingest_object(world.services(), parse(event))

    item = world.item("data/a.jsonl", "000000000001")
    assert item["owner"] == f"{BUCKET}/data/a.jsonl"
    assert (item["source_bucket"], item["source_key"]) == (BUCKET, "data/a.jsonl")
    assert (item["version_id"], item["etag"]) == (detail["version-id"], detail["etag"])
    assert item["sequencer"] == detail["sequencer"].ljust(64, "0")
    assert (item["position"], item["event_id"], item["replay_name"]) == (1, event["id"], "replay-1")
    assert item["ingested_at"].endswith("+00:00")


def test_overwrite_with_fewer_records_leaves_no_leftovers(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 1}, {"v": 1}, {"v": 1}))))

    ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 2}))))

    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_overwrite_with_a_blank_or_rejected_line_clears_that_position(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 1}, {"v": 1}, {"v": 1}))))

    ingest_object(services, parse(world.put("data/a.jsonl", '{"v": 2}\n\nnot json\n')))

    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_same_event_twice_gives_the_same_table(world: World) -> None:
    services = world.services()
    event = world.put("data/a.jsonl", jsonl({"v": 1}, {"v": 2}))
    ingest_object(services, parse(event))
    first = world.records()

    again = ingest_object(services, parse(event))

    assert again.status == "ingested"
    assert world.records() == first


def test_older_event_arriving_after_a_newer_one_is_skipped(world: World) -> None:
    services = world.services()
    old = world.put("data/a.jsonl", jsonl({"v": 1}, {"v": 1}))
    new = world.put("data/a.jsonl", jsonl({"v": 2}))
    ingest_object(services, parse(new))

    outcome = ingest_object(services, parse(old))

    assert outcome.status == "stale"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_replayed_event_is_reprocessed_and_idempotent(world: World) -> None:
    services = world.services()
    event = world.put("data/a.jsonl", jsonl({"v": 1}))
    ingest_object(services, parse(event))
    replayed = {**event, "replay-name": "replay-2026-11-26"}

    outcome = ingest_object(services, parse(replayed))

    assert outcome.status == "ingested"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 1}}
    assert world.item("data/a.jsonl", "000000000001")["replay_name"] == "replay-2026-11-26"


def test_replay_of_an_old_version_days_later_does_not_regress(world: World) -> None:
    services = world.services()
    old = world.put("data/a.jsonl", jsonl({"v": 1}))
    ingest_object(services, parse(old))
    ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 2}))))

    outcome = ingest_object(services, parse({**old, "replay-name": "late-replay"}))

    assert outcome.status == "stale"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_delete_removes_the_objects_records(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 1}, {"v": 2}))))
    ingest_object(services, parse(world.put("data/b.jsonl", jsonl({"v": 3}))))

    outcome = delete_object(services, parse(world.delete("data/a.jsonl")))

    assert (outcome.status, outcome.items_removed) == ("deleted", 2)
    assert world.records() == {("data/b.jsonl", "000000000001"): {"v": 3}}


def test_created_event_arriving_after_the_delete_is_stale(world: World) -> None:
    services = world.services()
    created = world.put("data/a.jsonl", jsonl({"v": 1}))
    deleted = world.delete("data/a.jsonl")
    delete_object(services, parse(deleted))

    outcome = ingest_object(services, parse(created))

    assert outcome.status == "stale"
    assert world.records() == {}


def test_deleting_a_noncurrent_version_keeps_the_current_records(world: World) -> None:
    services = world.services()
    old = world.put("data/a.jsonl", jsonl({"v": 1}))
    ingest_object(services, parse(old))
    ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 2}))))
    old_version = old["detail"]["object"]["version-id"]
    world.s3.delete_object(Bucket=BUCKET, Key="data/a.jsonl", VersionId=old_version)
    expired = load_event("s3_object_deleted_lifecycle_noncurrent.json")
    expired["detail"]["object"] = {
        "key": "data/a.jsonl",
        "version-id": old_version,
        "sequencer": world.next_sequencer(),
    }

    outcome = delete_object(services, parse(expired))

    assert outcome.status == "unchanged"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_event_for_a_version_that_no_longer_exists_is_stale(world: World) -> None:
    event = world.put("data/a.jsonl", jsonl({"v": 1}))
    version = event["detail"]["object"]["version-id"]
    world.s3.delete_object(Bucket=BUCKET, Key="data/a.jsonl", VersionId=version)

    outcome = ingest_object(world.services(), parse(event))

    assert outcome.status == "stale"
    assert world.records() == {}


def test_unversioned_bucket_skips_an_event_whose_content_was_overwritten(unversioned_world: World) -> None:
    world = unversioned_world
    first = world.put("data/a.jsonl", jsonl({"v": 1}))
    second = world.put("data/a.jsonl", jsonl({"v": 2}))
    services = world.services()

    assert ingest_object(services, parse(first)).status == "stale"
    assert ingest_object(services, parse(second)).status == "ingested"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_unversioned_bucket_delete_removes_records(unversioned_world: World) -> None:
    world = unversioned_world
    services = world.services()
    ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 1}))))

    assert delete_object(services, parse(world.delete("data/a.jsonl"))).status == "deleted"
    assert world.records() == {}


def test_natural_key_dataset_uses_the_key_fields_and_last_written_object_wins(world: World) -> None:
    services = world.services()
    ann = {"Name": "Ann", "Role": "Dev", "Email": "ann@example.com"}
    bob = {"Name": "Bob", "Role": "Ops", "Email": "bob@example.com"}
    ingest_object(services, parse(world.put("people/a.jsonl", jsonl(ann, bob))))

    ingest_object(services, parse(world.put("people/b.jsonl", jsonl({**ann, "Role": "Lead"}))))

    assert world.records() == {
        ("people#ann@example.com", "record"): {**ann, "Role": "Lead"},
        ("people#bob@example.com", "record"): bob,
    }
    assert world.item("people#ann@example.com", "record")["owner"] == f"{BUCKET}/people/b.jsonl"


def test_deleting_an_object_removes_only_the_natural_key_items_it_owns(world: World) -> None:
    services = world.services()
    ann = {"Name": "Ann", "Role": "Dev", "Email": "ann@example.com"}
    bob = {"Name": "Bob", "Role": "Ops", "Email": "bob@example.com"}
    ingest_object(services, parse(world.put("people/a.jsonl", jsonl(ann, bob))))
    ingest_object(services, parse(world.put("people/b.jsonl", jsonl(ann))))

    delete_object(services, parse(world.delete("people/a.jsonl")))

    assert world.records() == {("people#ann@example.com", "record"): ann}


def test_natural_key_overwrite_removes_keys_the_new_version_lacks(world: World) -> None:
    services = world.services()
    ann = {"Name": "Ann", "Role": "Dev", "Email": "ann@example.com"}
    bob = {"Name": "Bob", "Role": "Ops", "Email": "bob@example.com"}
    ingest_object(services, parse(world.put("people/a.jsonl", jsonl(ann, bob))))

    ingest_object(services, parse(world.put("people/a.jsonl", jsonl(bob))))

    assert world.records() == {("people#bob@example.com", "record"): bob}


def test_a_newer_event_waits_for_the_lease_and_then_gives_up_with_a_retryable_error(world: World) -> None:
    services = world.services()
    first = parse(world.put("data/a.jsonl", jsonl({"v": 1})))
    second = parse(world.put("data/a.jsonl", jsonl({"v": 2})))
    store = services.store
    held = store.acquire(
        first.owner, first.sequencer, first.event_id, now=services.clock(), lease_seconds=300, natural=False
    )
    assert isinstance(held, Acquired)

    with pytest.raises(ObjectBusyError):
        ingest_object(world.services(lease=LeasePolicy(max_wait_seconds=1.0)), second)

    assert world.sleeps, "the newer event polled before giving up"
    state = world.dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": STATE_PREFIX + first.owner}, "sk": {"S": "state"}}
    )["Item"]
    assert state["pending_sequencer"]["S"] == second.sequencer


def test_an_expired_lease_of_a_crashed_attempt_is_taken_over_and_its_writes_cleaned(world: World) -> None:
    services = world.services()
    old = parse(world.put("data/a.jsonl", jsonl({"v": 1}, {"v": 1}, {"v": 1})))
    new = parse(world.put("data/a.jsonl", jsonl({"v": 2}, {}, {"v": 2})))
    # The old version's attempt wrote its records and died without committing or releasing.
    services.store.acquire(
        old.owner, old.sequencer, old.event_id, now=services.clock() - 1000, lease_seconds=300, natural=False
    )
    writer = services.store.writer()
    for position in (1, 2, 3):
        writer.put(
            {
                **record_key("data/a.jsonl", position),
                "owner": {"S": old.owner},
                "sequencer": {"S": old.sequencer},
                "data": {"M": {"v": {"N": "1"}}},
            }
        )
    writer.flush()

    outcome = ingest_object(services, new)

    assert outcome.status == "ingested"
    assert world.records() == {
        ("data/a.jsonl", "000000000001"): {"v": 2},
        ("data/a.jsonl", "000000000002"): {},
        ("data/a.jsonl", "000000000003"): {"v": 2},
    }


def test_an_older_event_is_refused_once_a_newer_one_is_announced(world: World) -> None:
    services = world.services()
    old = parse(world.put("data/a.jsonl", jsonl({"v": 1})))
    new = parse(world.put("data/a.jsonl", jsonl({"v": 2})))
    services.store.announce(old.owner, new.sequencer)

    assert ingest_object(services, old).status == "stale"
    assert ingest_object(services, new).status == "ingested"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_an_ingest_that_learns_of_a_newer_event_stops_and_leaves_the_work_to_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions.core.use_cases.version_writer as writer_module

    monkeypatch.setattr(writer_module, "SUPERSEDE_CHECK_EVERY", 2)
    services = world.services()
    old = parse(world.put("data/a.jsonl", jsonl(*({"v": 1} for _ in range(5)))))
    new = parse(world.put("data/a.jsonl", jsonl({"v": 2})))
    real_open = services.objects.open

    def open_while_the_newer_event_arrives(*args: Any, **kwargs: Any) -> Any:
        services.store.announce(old.owner, new.sequencer)  # what the newer event's acquire_or_wait does
        return real_open(*args, **kwargs)

    monkeypatch.setattr(services.objects, "open", open_while_the_newer_event_arrives)

    assert ingest_object(services, old).status == "superseded"
    assert ingest_object(world.services(), new).status == "ingested"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_two_versions_processed_concurrently_end_with_the_newer_one(world: World) -> None:
    old = parse(world.put("data/a.jsonl", jsonl({"v": 1}, {"v": 1}, {"v": 1})))
    new = parse(world.put("data/a.jsonl", jsonl({"v": 2})))
    services = world.services()
    # The old version's processor holds the lease when the new event arrives ...
    services.store.acquire(
        old.owner, old.sequencer, old.event_id, now=services.clock(), lease_seconds=300, natural=False
    )
    finished: list[str] = []

    def while_waiting(_: float) -> None:
        # ... and finishes its work (its retry, same event id = same lease) while the new one waits.
        if not finished:
            finished.append(ingest_object(world.services(), old).status)

    def sleep(seconds: float) -> None:
        world.sleep(seconds)
        while_waiting(seconds)

    waiting = world.services(lease=LeasePolicy(max_wait_seconds=30.0), sleep=sleep)

    outcome = ingest_object(waiting, new)

    # The announced newer event made the holder's acquire-again refuse: it was stale; the new one won.
    assert finished == ["stale"]
    assert outcome.status == "ingested"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 2}}


def test_a_concurrent_duplicate_delivery_waits_while_a_retry_reclaims_its_own_lease(world: World) -> None:
    event = parse(world.put("data/a.jsonl", jsonl({"v": 1})))
    first = world.services(invocation_id="request-1")
    first.store.acquire(
        event.owner,
        event.sequencer,
        lease_token(first, event),
        now=world.now,
        lease_seconds=300,
        natural=False,
    )

    with pytest.raises(ObjectBusyError):
        ingest_object(world.services(invocation_id="request-2"), event)

    assert ingest_object(world.services(invocation_id="request-1"), event).status == "ingested"
    assert world.records() == {("data/a.jsonl", "000000000001"): {"v": 1}}


class _FailingReader:
    def open(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("S3 read timed out")


class _StoreWhoseReleaseFails:
    """The real store, except that giving a lease back fails (e.g. DynamoDB throttling right then)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def release(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("throttled while releasing")


def test_a_failed_release_does_not_hide_the_original_failure(world: World) -> None:
    real = world.services()
    services = world.services(objects=_FailingReader(), store=_StoreWhoseReleaseFails(real.store))

    with pytest.raises(ConnectionError, match="S3 read timed out") as raised:
        ingest_object(services, parse(world.put("data/a.jsonl", jsonl({"v": 1}))))

    assert any("releasing the lease" in note for note in raised.value.__notes__)


def test_a_failure_releases_the_lease_marked_dirty(world: World) -> None:
    services = world.services(objects=_FailingReader())
    event = world.put("data/a.jsonl", jsonl({"v": 1}))

    with pytest.raises(ConnectionError):
        ingest_object(services, parse(event))

    state = world.item(STATE_PREFIX + f"{BUCKET}/data/a.jsonl", "state")
    assert "lease_token" not in state
    assert state["dirty"] is True
