"""An ingest that runs out of invocation time checkpoints and hands over to a continuation, which
resumes from the checkpoint under the same lease: the table ends exactly as one uninterrupted ingest
leaves it, and the positions before the checkpoint are not written twice."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from typing import Any

import pytest

from functions.core.domain.range_task import RangeTask
from functions.core.use_cases import version_writer
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.ports import FanoutPolicy
from functions.core.use_cases.range_ingest import ingest_range

from ..conftest import STATE_PREFIX, TABLE, World, parse


class ListQueue:
    """The work queue as the range worker sees it: the tasks, in the order they were sent."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str]) -> None:
        self.bodies.extend(bodies)


def puts_sent(world: World) -> Counter[str]:
    """PutRequests as they leave botocore (the real client the store uses)."""
    sent: Counter[str] = Counter()

    def record(params: dict[str, Any], **_: Any) -> None:
        # The body botocore sends (the writer hands it encoded batches: no items in the parameters).
        for requests in json.loads(params["body"])["RequestItems"].values():
            sent["put"] += sum("PutRequest" in request for request in requests)

    world.dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", record)
    return sent


def table_items(world: World) -> dict[tuple[str, str], Any]:
    """Every item but state items, without the attributes that name the attempt that wrote them."""
    found = {}
    for page in world.dynamodb.get_paginator("scan").paginate(TableName=TABLE):
        for item in page["Items"]:
            if not item["pk"]["S"].startswith(STATE_PREFIX):
                found[item["pk"]["S"], item["sk"]["S"]] = {
                    name: value for name, value in item.items() if name != "ingested_at"
                }
    return found


BODY = "".join(
    ("\n" if n % 7 == 0 else "not json\n" if n % 11 == 0 else json.dumps({"n": n}) + "\n")
    for n in range(1, 60)
)


@pytest.mark.parametrize(
    ("key", "body"), [("data/big.jsonl.gz", gzip.compress(BODY.encode())), ("data/big.jsonl", BODY)]
)
def test_a_continuation_resumes_from_the_checkpoint_and_ends_like_one_ingest(
    world: World, monkeypatch: pytest.MonkeyPatch, key: str, body: bytes | str
) -> None:
    monkeypatch.setattr(version_writer, "CHECKPOINT_EVERY", 10)
    queue = ListQueue()
    event = parse(world.put(key, body))
    sent = puts_sent(world)
    # Out of time from the start: the first checkpoint hands over.
    services = world.services(fanout=FanoutPolicy(queue=queue, threshold_bytes=1 << 30), hand_over_at=0.0)

    first = ingest_object(services, event)

    assert first.status == "continued"
    assert len(queue.bodies) == 1
    written_before = sent["put"]
    # The continuation runs in the range worker, which has time: it resumes and commits.
    done = ingest_range(world.services(), RangeTask.from_json(queue.bodies[0]))
    assert done.status == "ingested"
    resumed_writes = sent["put"] - written_before
    continued_table, continued_report = table_items(world), world.report(done.report_key or "")
    state = world.item(STATE_PREFIX + event.owner, "state")

    # The same object ingested in one go, in a fresh table.
    world.dynamodb.delete_table(TableName=TABLE)
    from ..conftest import create_table

    create_table(world.dynamodb)
    sent.clear()
    once = ingest_object(world.services(), event)

    assert once.status == "ingested"
    assert continued_table == table_items(world)
    assert continued_report == world.report(once.report_key or "")
    assert (state["record_count"], state["rejected_count"]) == (once.records_written, once.records_rejected)
    assert "progress_position" not in state
    assert "fanout_token" not in state
    # Nothing before the checkpoint was sent twice: both attempts together sent each record once.
    assert written_before + resumed_writes == sent["put"] == once.records_written
    assert written_before > 0
