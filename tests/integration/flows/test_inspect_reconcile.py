"""`eventpipe object`, `records` and `reconcile` against local mode with the real stack deployed.

The reconcile test breaks the table behind the pipeline's back (deletes an item, writes a stale
version's record, removes a state item, leaves a record of a deleted object, turns an object back into
key layout 1), then proves that `reconcile` reports each drift, `reconcile --repair` fixes it through the
pipeline's own write path, and the next `reconcile` finds nothing. Items are addressed as the write path
keys them (functions/core/domain/table_layout.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from eventpipe.local.emulator import Emulator
from eventpipe.ops.cli import register
from functions.core.domain.table_layout import SHARD_BLOCK, record_key, state_key

pytestmark = pytest.mark.integration

Run = Callable[..., Any]


@pytest.fixture
def cli(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`cli("object", key, "--json")` -> (exit code, stdout), found as `EVENTPIPE_LOCAL=1 eventpipe` does."""
    monkeypatch.setenv("EVENTPIPE_LOCAL", "1")
    monkeypatch.setenv("EVENTPIPE_LOCAL_STATE_DIR", str(emulator.state_dir))
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout

    return run


def put(s3: Any, bucket: str, key: str, lines: list[str]) -> str:
    return str(
        s3.put_object(Bucket=bucket, Key=key, Body="".join(f"{line}\n" for line in lines))["VersionId"]
    )


def test_object_and_records_show_an_ingested_object(
    cli: Run, s3: Any, outputs: dict[str, str], settle: Callable[[], None]
) -> None:
    key = f"inspect/{uuid.uuid4().hex[:8]}/team.jsonl"
    version = put(s3, outputs["BucketName"], key, ['{"n": 1}', "not json", '{"n": 3}'])
    settle()

    code, text = cli("object", key, "--json")
    assert code == 0, text
    data = json.loads(text)
    assert data["state"]["status"] == "present"
    assert (data["state"]["version_id"], data["version_mirrored"]) == (version, True)
    assert (data["records"], data["rejected"]) == (2, 1)
    assert data["state"]["lease"] is None
    assert data["state"]["dirty"] is False
    assert [(e["position"], e["reason"]) for e in data["rejects_report"]["entries"]] == [(2, "invalid_json")]
    assert data["last_event"]["event_id"]
    assert data["last_event"]["committed_at"]

    code, text = cli("object", key)
    assert code == 0
    assert "records: 2, rejected: 1 (key layout 2, partitions read: 1)" in text
    assert "invalid_json" in text

    code, text = cli("records", key, "--json")
    assert code == 0, text
    rows = [json.loads(line) for line in text.splitlines()]
    assert [(r["position"], r["data"]) for r in rows] == [(1, {"n": 1}), (3, {"n": 3})]

    code, text = cli("records", key)
    assert code == 0
    assert '{"n": 3}' in text
    assert "2 records: 2 position-keyed (0 of them under layout 1), 0 natural-key" in text


def test_records_of_an_object_spread_over_shards_come_back_in_position_order(
    cli: Run, s3: Any, outputs: dict[str, str], settle: Callable[[], None]
) -> None:
    key = f"inspect/{uuid.uuid4().hex[:8]}/big.jsonl"
    # Five shards (the wrap-around past 64 blocks is read in order in tests/unit/ops/test_object_records.py).
    count = 4 * SHARD_BLOCK + 3
    put(s3, outputs["BucketName"], key, [json.dumps({"n": n}) for n in range(1, count + 1)])
    settle()

    code, text = cli("records", key, "--json")
    assert code == 0, text
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["position"] for r in rows] == list(range(1, count + 1))
    assert [r["data"]["n"] for r in rows] == list(range(1, count + 1))
    assert [r["pk"] for r in rows] == [record_key(key, n)["pk"]["S"] for n in range(1, count + 1)]
    assert len({r["pk"] for r in rows}) == 5

    code, text = cli("object", key, "--json")
    assert code == 0, text
    data = json.loads(text)
    assert (data["records"], data["state"]["layout"], data["partitions_read"]) == (count, 2, 5)


def test_reconcile_reports_each_drift_repairs_it_and_then_finds_none(
    cli: Run, s3: Any, aws: Callable[[str], Any], outputs: dict[str, str], settle: Callable[[], None]
) -> None:
    bucket, table = outputs["BucketName"], outputs["TableName"]
    dynamodb = aws("dynamodb")
    prefix = f"reconcile/{uuid.uuid4().hex[:8]}/"
    for name in ("a", "b", "c", "d", "old", "gone"):
        put(s3, bucket, f"{prefix}{name}.jsonl", ['{"n": 1}', '{"n": 2}'])
    settle()
    code, text = cli("reconcile", "--prefix", prefix, "--json")
    assert (code, json.loads(text)["drifted"]) == (0, 0), text
    s3.delete_object(Bucket=bucket, Key=f"{prefix}gone.jsonl")
    settle()

    # Break the table behind the pipeline's back.
    dynamodb.delete_item(TableName=table, Key=record_key(f"{prefix}a.jsonl", 2))
    stale = dynamodb.get_item(TableName=table, Key=record_key(f"{prefix}b.jsonl", 1))["Item"]
    dynamodb.put_item(TableName=table, Item={**stale, "version_id": {"S": "an-older-version"}})
    dynamodb.delete_item(TableName=table, Key=state_key(f"{bucket}/{prefix}c.jsonl"))
    # d: a record beyond its last position, in a shard positions 1..2 never use (shard 05)
    beyond = 5 * SHARD_BLOCK + 1
    first = dynamodb.get_item(TableName=table, Key=record_key(f"{prefix}d.jsonl", 1))["Item"]
    extra = {**first, **record_key(f"{prefix}d.jsonl", beyond), "position": {"N": str(beyond)}}
    dynamodb.put_item(TableName=table, Item=extra)
    # old: what key layout 1 left: records under pk = the object key, a state item without `layout`
    old = f"{prefix}old.jsonl"
    for position in (1, 2):
        item = dynamodb.get_item(TableName=table, Key=record_key(old, position))["Item"]
        dynamodb.put_item(TableName=table, Item={**item, "pk": {"S": old}})
        dynamodb.delete_item(TableName=table, Key=record_key(old, position))
    dynamodb.update_item(TableName=table, Key=state_key(f"{bucket}/{old}"), UpdateExpression="REMOVE layout")
    # gone: a record of a deleted object, in shard 03
    gone = f"{prefix}gone.jsonl"
    leftover = {**stale, **record_key(gone, 3 * SHARD_BLOCK + 1), "owner": {"S": f"{bucket}/{gone}"}}
    dynamodb.put_item(TableName=table, Item=leftover)

    code, text = cli("reconcile", "--prefix", prefix, "--json")
    assert code == 1, text
    found = {
        o["key"].removeprefix(prefix): {d["kind"] for d in o["drift"]} for o in json.loads(text)["objects"]
    }
    assert found == {
        "a.jsonl": {"count_mismatch"},
        "b.jsonl": {"stale_records"},
        "c.jsonl": {"missing_state", "count_mismatch"},
        "d.jsonl": {"count_mismatch"},
        "old.jsonl": {"legacy_layout"},
        "gone.jsonl": {"records_for_absent_object"},
    }
    code, text = cli("records", old)
    assert "2 records: 2 position-keyed (2 of them under layout 1), 0 natural-key" in text

    code, text = cli("reconcile", "--prefix", prefix, "--repair", "--json")
    assert code == 0, text
    repaired = json.loads(text)
    assert (repaired["repaired"], repaired["drift_remaining"]) == (6, 0)

    code, text = cli("reconcile", "--prefix", prefix)
    assert code == 0, text
    assert "no drift" in text
    code, text = cli("records", f"{prefix}a.jsonl", "--json")
    assert [json.loads(line)["data"] for line in text.splitlines()] == [{"n": 1}, {"n": 2}]
    code, text = cli("records", old, "--json")
    assert [(r["pk"], r["data"]) for r in map(json.loads, text.splitlines())] == [
        (f"{old}#00", {"n": 1}),
        (f"{old}#00", {"n": 2}),
    ]
