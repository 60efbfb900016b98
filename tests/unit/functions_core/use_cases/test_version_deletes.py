"""Permanently deleting one version of a versioned object: the table mirrors whatever is current after."""

from __future__ import annotations

import json
from typing import Any

from functions.core.adapters.s3_object_reader import S3ObjectReader
from functions.core.domain.object_versions import NoCurrentVersion
from functions.core.domain.table_layout import record_key
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object

from ..conftest import BUCKET, World, parse

KEY = "data/a.jsonl"


def jsonl(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def version_of(event: dict[str, Any]) -> str:
    return str(event["detail"]["object"]["version-id"])


def rows(*records: dict[str, object], key: str = KEY) -> dict[tuple[str, str], Any]:
    return {(key, f"{position:012d}"): record for position, record in enumerate(records, start=1)}


def test_deleting_the_current_version_mirrors_the_previous_one(world: World) -> None:
    services = world.services()
    older = world.put(KEY, jsonl({"v": 1}))
    newer = world.put(KEY, jsonl({"v": 2}, {"v": 2}, {"v": 2}))
    ingest_object(services, parse(older))
    ingest_object(services, parse(newer))

    deletion = parse(world.delete_version(KEY, version_of(newer)))
    outcome = delete_object(services, deletion)

    assert (outcome.status, outcome.records_written, outcome.items_removed) == ("restored", 1, 2)
    assert world.records() == rows({"v": 1})
    item = world.item(KEY, "000000000001")
    assert (item["version_id"], item["sequencer"]) == (version_of(older), deletion.sequencer)


def test_deleting_a_noncurrent_version_checks_the_current_one_and_writes_nothing(world: World) -> None:
    services = world.services()
    older = world.put(KEY, jsonl({"v": 1}))
    newer = world.put(KEY, jsonl({"v": 2}))
    ingest_object(services, parse(older))
    ingest_object(services, parse(newer))
    writes: list[str] = []
    world.dynamodb.meta.events.register(
        "before-send.dynamodb.BatchWriteItem", lambda request, **_: writes.append(request.url)
    )
    deletion = parse(world.delete_version(KEY, version_of(older), reason="Lifecycle Expiration"))

    outcome = delete_object(services, deletion)

    assert (outcome.status, outcome.write_requests, writes) == ("unchanged", 0, [])
    assert world.records() == rows({"v": 2})
    # The deletion's sequencer is recorded, so no event older than it can change the table any more.
    assert world.item(f"object#{BUCKET}/{KEY}", "state")["sequencer"] == deletion.sequencer


def test_a_duplicate_or_replayed_permanent_delete_leaves_the_same_table(world: World) -> None:
    services = world.services()
    older = world.put(KEY, jsonl({"v": 1}))
    newer = world.put(KEY, jsonl({"v": 2}, {"v": 2}))
    ingest_object(services, parse(older))
    ingest_object(services, parse(newer))
    deletion = world.delete_version(KEY, version_of(newer))
    delete_object(services, parse(deletion))
    table = world.records()

    duplicate = delete_object(services, parse(deletion))
    replayed = delete_object(services, parse({**deletion, "replay-name": "replay-days-later"}))

    assert (duplicate.status, replayed.status) == ("unchanged", "unchanged")
    assert world.records() == table == rows({"v": 1})


def test_deleting_the_only_version_empties_the_table(world: World) -> None:
    services = world.services()
    only = world.put(KEY, jsonl({"v": 1}, {"v": 1}))
    ingest_object(services, parse(only))

    outcome = delete_object(services, parse(world.delete_version(KEY, version_of(only))))

    assert (outcome.status, outcome.items_removed) == ("deleted", 2)
    assert world.records() == {}


def test_removing_the_delete_marker_brings_the_records_back(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 1}))))
    marker = world.delete(KEY)
    delete_object(services, parse(marker))

    outcome = delete_object(services, parse(world.delete_version(KEY, version_of(marker))))

    assert outcome.status == "restored"
    assert world.records() == rows({"v": 1})


def test_a_permanent_delete_that_overtakes_the_created_event_converges(world: World) -> None:
    services = world.services()
    older = world.put(KEY, jsonl({"v": 1}))
    newer = world.put(KEY, jsonl({"v": 2}))
    deletion = world.delete_version(KEY, version_of(newer))

    ingest_object(services, parse(older))
    delete_object(services, parse(deletion))
    late = ingest_object(services, parse(newer))

    assert late.status == "stale"
    assert world.records() == rows({"v": 1})


def test_a_noncurrent_delete_processed_before_the_newer_version_keeps_it(world: World) -> None:
    services = world.services()
    older = world.put(KEY, jsonl({"v": 1}))
    newer = world.put(KEY, jsonl({"v": 2}))
    ingest_object(services, parse(older))
    # The table still mirrors the older version when lifecycle expires it (the newer event is late):
    # the table follows the bucket to the current version at once, and the late event is stale.
    expiry = world.delete_version(KEY, version_of(older), reason="Lifecycle Expiration")

    assert delete_object(services, parse(expiry)).status == "restored"
    assert ingest_object(services, parse(newer)).status == "stale"
    assert world.records() == rows({"v": 2})


def test_an_upload_racing_the_permanent_delete_ends_with_the_upload(world: World) -> None:
    services = world.services()
    older = world.put(KEY, jsonl({"v": 1}))
    newer = world.put(KEY, jsonl({"v": 2}))
    ingest_object(services, parse(older))
    ingest_object(services, parse(newer))
    deletion = world.delete_version(KEY, version_of(newer))
    upload = world.put(KEY, jsonl({"v": 3}, {"v": 3}))  # lands before delete-sync reads the bucket

    restored = delete_object(services, parse(deletion))
    assert world.records() == rows({"v": 3}, {"v": 3})  # the current version, never the deleted one
    after = ingest_object(services, parse(upload))

    assert (restored.status, after.status) == ("restored", "ingested")
    assert world.records() == rows({"v": 3}, {"v": 3})
    assert world.item(KEY, "000000000001")["version_id"] == version_of(upload)


def test_the_upload_event_first_makes_the_racing_permanent_delete_stale(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 1}))))
    newer = world.put(KEY, jsonl({"v": 2}))
    ingest_object(services, parse(newer))
    deletion = world.delete_version(KEY, version_of(newer))
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 3}))))

    assert delete_object(services, parse(deletion)).status == "stale"
    assert world.records() == rows({"v": 3})


def test_natural_key_items_follow_the_version_that_is_current_again(world: World) -> None:
    services = world.services()

    def person(email: str) -> dict[str, str]:
        return {"Name": email.upper(), "Role": "r", "Email": email}

    older = world.put("people/a.jsonl", jsonl(person("a@x.org"), person("b@x.org")))
    newer = world.put("people/a.jsonl", jsonl(person("a@x.org"), person("c@x.org")))
    ingest_object(services, parse(older))
    ingest_object(services, parse(newer))

    delete_object(services, parse(world.delete_version("people/a.jsonl", version_of(newer))))

    assert world.records() == {
        ("people#a@x.org", "record"): person("a@x.org"),
        ("people#b@x.org", "record"): person("b@x.org"),
    }


def test_an_interrupted_attempt_makes_even_a_noncurrent_delete_re_mirror_the_bucket(world: World) -> None:
    services = world.services()
    older = world.put(KEY, jsonl({"v": 1}))
    ingest_object(services, parse(older))
    newer = parse(world.put(KEY, jsonl({"v": 2}, {"v": 2})))
    # The newer version's attempt wrote one item and died; its event will never come back.
    services.store.acquire(
        newer.owner, newer.sequencer, "crashed", now=services.clock() - 1000, lease_seconds=300, natural=False
    )
    writer = services.store.writer()
    writer.put(
        {
            **record_key(KEY, 2),
            "owner": {"S": newer.owner},
            "sequencer": {"S": newer.sequencer},
            "data": {"M": {"v": {"N": "2"}}},
        }
    )
    writer.flush()

    outcome = delete_object(services, parse(world.delete_version(KEY, version_of(older))))

    assert outcome.status == "restored"
    assert world.records() == rows({"v": 2}, {"v": 2})


def test_a_key_hidden_by_a_delete_marker_reads_as_absent_naming_the_marker(world: World) -> None:
    # moto omits the marker headers on this 404; S3 sends them, so answer as S3 does.
    def as_s3_answers(request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        body = b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
        headers = {
            "x-amz-delete-marker": "true",
            "x-amz-version-id": "marker-1",
            "Content-Type": "application/xml",
        }
        return AWSResponse(request.url, 404, headers, _Body(body))

    world.s3.meta.events.register("before-send.s3.GetObject", as_s3_answers)

    assert S3ObjectReader(world.s3).open_current(BUCKET, KEY) == NoCurrentVersion("marker-1")


def test_a_key_without_versions_reads_as_absent(world: World) -> None:
    assert S3ObjectReader(world.s3).open_current(BUCKET, "data/never.jsonl") == NoCurrentVersion(None)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data
