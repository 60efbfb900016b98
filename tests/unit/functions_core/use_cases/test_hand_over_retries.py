"""Lambda retries of an attempt that handed an object over (to a continuation) or tried to (issue 12).

A retry of an invocation carries the same request id, so the same lease token. It must neither look like
an idle fan-out that a newer event may take over while it writes (found by review: records lost or
resurrected, committed clean), nor write beside a continuation its first attempt started.
Real record store on moto; the newer event arrives at the retry's first checkpoint or removal check.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.domain.events import ObjectEvent
from functions.core.domain.range_task import RangeTask
from functions.core.use_cases import mirror_object, version_writer
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.object_lease import ObjectBusyError
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import FanoutPolicy
from functions.core.use_cases.range_ingest import ingest_range

from ..conftest import STATE_PREFIX, TABLE, World, _world, parse


@pytest.fixture
def world(aws_env: None) -> Iterator[World]:
    yield from _world(versioned=True)


class Queue:
    """The range work queue; its first SendMessage fails when `fail_first` (after botocore's retries)."""

    def __init__(self, *, fail_first: bool) -> None:
        self.bodies: list[str] = []
        self._fail = fail_first

    def send(self, bodies: list[str]) -> None:
        if self._fail:
            self._fail = False
            raise RuntimeError("SendMessage failed")
        self.bodies.extend(bodies)


class Meanwhile(DynamoRecordStore):
    """The record store, running `visit` once: at the first checkpoint or removal check of an attempt."""

    def __init__(self, world: World, visit: Callable[[], Any]) -> None:
        super().__init__(world.dynamodb, TABLE)
        self._visit: Callable[[], Any] | None = visit

    def _once(self) -> None:
        if self._visit is not None:
            visit, self._visit = self._visit, None
            visit()

    def checkpoint(self, *args: Any, **kwargs: Any) -> None:
        super().checkpoint(*args, **kwargs)
        self._once()

    def superseded(self, object_id: str, sequencer: str) -> bool:
        answer = super().superseded(object_id, sequencer)
        self._once()
        return answer


def _gzip_object(world: World) -> tuple[ObjectEvent, Queue, FanoutPolicy]:
    """A 60-record gzip object (never fanned out: a long one hands over), and a working queue."""
    body = gzip.compress(b"".join(b'{"n": %d}\n' % n for n in range(1, 61)))
    queue = Queue(fail_first=False)
    return (
        parse(world.put("data/big.jsonl.gz", body)),
        queue,
        FanoutPolicy(queue=queue, threshold_bytes=1 << 30),
    )


def _attempt(handle: Callable[[], Outcome]) -> Status | str:
    try:
        return handle().status
    except ObjectBusyError:
        return "busy"


def test_a_newer_delete_waits_for_the_retry_of_an_ingest_whose_hand_over_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(version_writer, "CHECKPOINT_EVERY", 10)
    key = "data/big.jsonl.gz"  # gzip never fans out: a long one hands over to a continuation
    created = parse(world.put(key, gzip.compress(b"".join(b'{"n": %d}\n' % n for n in range(1, 61)))))
    fanout = FanoutPolicy(queue=Queue(fail_first=True), threshold_bytes=1 << 30)
    with pytest.raises(RuntimeError):  # out of time at its first checkpoint; the hand-over is not sent
        ingest_object(world.services(fanout=fanout, hand_over_at=0.0, invocation_id="R"), created)
    deleted = parse(world.delete(key))
    seen: list[Status | str] = []

    def newer_delete() -> None:
        seen.append(_attempt(lambda: delete_object(world.services(invocation_id="D1"), deleted)))

    # Lambda's retry: the same request id, so the same lease token, with time to finish.
    retry = ingest_object(world.services(store=Meanwhile(world, newer_delete), invocation_id="R"), created)

    assert (seen, retry.status, retry.records_written) == (["busy"], Status.INGESTED, 60)
    # The delete's own retry, once the ingest committed: the object ends deleted, nothing left of it.
    assert delete_object(world.services(invocation_id="D2"), deleted).status is Status.DELETED
    assert world.records() == {}
    state = world.item(STATE_PREFIX + created.owner, "state")
    assert state["status"] == "deleted"
    assert state["dirty"] is False


def test_a_newer_upload_waits_for_the_retry_of_a_delete_whose_hand_over_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mirror_object, "REMOVAL_CHECK_EVERY", 20)
    key = "data/big.jsonl"
    ingest_object(world.services(), parse(world.put(key, "".join(f'{{"n": {n}}}\n' for n in range(1, 61)))))
    deleted = parse(world.delete(key))
    fanout = FanoutPolicy(queue=Queue(fail_first=True), threshold_bytes=1 << 30)
    with pytest.raises(RuntimeError):  # out of time at its first check; the hand-over is not sent
        delete_object(world.services(fanout=fanout, hand_over_at=0.0, invocation_id="R"), deleted)
    uploaded = parse(world.put(key, "".join(json.dumps({"n": n, "v": 3}) + "\n" for n in range(1, 61))))
    seen: list[Status | str] = []

    def newer_upload() -> None:
        seen.append(_attempt(lambda: ingest_object(world.services(invocation_id="U1"), uploaded)))

    retry = delete_object(world.services(store=Meanwhile(world, newer_upload), invocation_id="R"), deleted)

    # The upload waited (its announcement stops the removal at its next check) instead of taking over.
    assert (seen, retry.status) == (["busy"], Status.SUPERSEDED)
    assert ingest_object(world.services(invocation_id="U2"), uploaded).status is Status.INGESTED
    records = world.records()
    assert len(records) == 60
    assert all(data["v"] == 3 for data in records.values())


def test_the_retry_of_an_attempt_that_handed_over_takes_it_back_before_its_continuation_starts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(version_writer, "CHECKPOINT_EVERY", 10)
    created, queue, fanout = _gzip_object(world)
    first = ingest_object(world.services(fanout=fanout, hand_over_at=0.0, invocation_id="R"), created)

    # The invocation failed after sending the continuation (say, a timeout): Lambda retries it. Nothing
    # of the continuation runs yet, so the retry takes the object back (it cannot tell a hand-over
    # that was sent from one that died sending) and finishes it; the continuation, later, is dropped.
    retry = ingest_object(world.services(fanout=fanout, invocation_id="R"), created)
    continuation = ingest_range(world.services(invocation_id="W"), RangeTask.from_json(queue.bodies[0]))

    assert (first.status, len(queue.bodies)) == (Status.CONTINUED, 1)
    assert (retry.status, retry.records_written) == (Status.INGESTED, 60)
    assert continuation.status is Status.STALE
    assert [data["n"] for data in world.records().values()] == list(range(1, 61))
    assert world.item(STATE_PREFIX + created.owner, "state")["dirty"] is False


def test_the_retry_of_an_attempt_that_handed_over_waits_while_its_continuation_writes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(version_writer, "CHECKPOINT_EVERY", 10)
    created, queue, fanout = _gzip_object(world)
    ingest_object(world.services(fanout=fanout, hand_over_at=0.0, invocation_id="R"), created)
    seen: list[Status | str] = []

    def retry_meanwhile() -> None:  # the continuation is registered and writing
        seen.append(
            _attempt(lambda: ingest_object(world.services(fanout=fanout, invocation_id="R"), created))
        )

    done = ingest_range(
        world.services(store=Meanwhile(world, retry_meanwhile), invocation_id="W"),
        RangeTask.from_json(queue.bodies[0]),
    )

    assert (seen, done.status) == (["busy"], Status.INGESTED)
    assert [data["n"] for data in world.records().values()] == list(range(1, 61))
