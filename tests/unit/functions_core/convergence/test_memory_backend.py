"""The in-memory store of the exhaustive checker behaves like `DynamoRecordStore` on DynamoDB (moto):
the same histories, delivered in the same sampled orders (with crashes), leave identical tables, state
items included: the lease, checkpoints (`checkpoint`) and fan-outs (`start_fanout`, `join_fanout`,
`leave_fanout`, `claim_finalize`, `abandon_fanout`) write the same attributes and refuse the same calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.domain.datasets import DatasetRegistry
from functions.core.domain.events import ObjectEvent
from functions.core.domain.range_task import RangeTask
from functions.core.use_cases import version_writer
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.outcome import Outcome
from functions.core.use_cases.ports import FanoutPolicy, LeasePolicy, Services
from functions.core.use_cases.range_ingest import ingest_range
from tests.fuzzing import examples

from ..conftest import REGION, TABLE, create_table
from .exhaustive import SCENARIOS, operation_sequences, perform
from .memory_backend import CrashAfterWrites, MemoryQueue, MemoryRecordStore, MemoryReports
from .s3_model import KeyHistory, ModelReader

# Every scenario is drawn as often (the fan-out one, on an unversioned bucket, has few histories).
HISTORIES = st.sampled_from(list(SCENARIOS)).flatmap(
    lambda name: st.tuples(
        st.just(name), st.sampled_from(list(operation_sequences(SCENARIOS[name].versioned, 3)))
    )
)


class CrashingDynamoStore(DynamoRecordStore):
    """`DynamoRecordStore` whose next batch write after `fault_skip` whole ones dies after its first
    item, like the memory store's fault (and `crash_point` like the memory store's). "Dies after a
    write": the request sent (by a pool thread) has landed before the crash is raised."""

    fault: str | None = None
    fault_skip = 0

    def crash_point(self, what: str) -> None:
        if self.fault is not None and not self.fault_skip:
            self.fault = None
            raise CrashAfterWrites(f"simulated crash {what}")

    def writer(self, on_refused: Any = None) -> Any:
        writer = super().writer(on_refused)
        store = self
        send = writer._send

        def send_then_maybe_die() -> None:
            if store.fault is not None and store.fault_skip:
                store.fault_skip -= 1
                send()
                return
            if store.fault is not None and len(writer._pending) > 1:
                store.fault = None
                first = dict([next(iter(writer._pending.items()))])
                writer._pending = first
                send()
                writer.flush()  # the request has landed (a pool sends it from another thread)
                raise CrashAfterWrites("simulated crash in the middle of a write")
            if store.fault is not None:
                store.fault = None
                send()
                writer.flush()
                raise CrashAfterWrites("simulated crash right after a write")
            send()

        writer._send = send_then_maybe_die  # type: ignore[method-assign]
        return writer


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def table_of(client: Any) -> dict[tuple[str, str], dict[str, Any]]:
    items = client.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {(item["pk"]["S"], item["sk"]["S"]): item for item in items}


@settings(
    max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=HISTORIES, data=st.data())
def test_the_memory_store_leaves_the_same_table_as_dynamodb(
    dynamodb: Any, aws_env: None, history: Any, data: st.DataObject
) -> None:
    """Events and (in the fan-out scenario) range tasks, in drawn orders, some crashing midway, some
    delivered twice; in the resumed scenario every record is a checkpoint and a crash comes after one."""
    name, operations = history
    scenario = SCENARIOS[name]
    for existing in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=existing)
    create_table(dynamodb)
    key_history = KeyHistory(scenario.key, scenario.versioned)
    events = [perform(key_history, scenario, operation) for operation in operations]
    memory, dynamo = MemoryRecordStore(), CrashingDynamoStore(dynamodb, TABLE, sleep=lambda _: None)
    stores: tuple[Any, ...] = (memory, dynamo)
    queues = {id(memory): MemoryQueue(memory), id(dynamo): MemoryQueue(dynamo)}  # type: ignore[arg-type]
    reports = {id(memory): MemoryReports(), id(dynamo): MemoryReports()}

    def services(store: Any) -> Services:
        threshold = scenario.fanout_threshold
        return Services(
            store=store,
            objects=ModelReader(key_history),
            reports=reports[id(store)],
            datasets=DatasetRegistry.load(),
            lease=LeasePolicy(max_wait_seconds=0.0),
            fanout=FanoutPolicy() if threshold is None else FanoutPolicy(queues[id(store)], threshold),
            clock=lambda: 1_800_000_000.0,
            sleep=lambda _: None,
        )

    def step(work: Callable[[Any], Outcome], crash: bool) -> None:
        outcomes = []
        for store in stores:
            if crash:
                store.fault, store.fault_skip = "crash", scenario.fault_skip
            try:
                outcomes.append(str(work(store).status))
            except Exception as failure:
                outcomes.append(type(failure).__name__)
            store.fault = None
        assert outcomes[0] == outcomes[1]
        assert queues[id(memory)].bodies == queues[id(dynamo)].bodies
        assert reports[id(memory)].reports == reports[id(dynamo)].reports
        states = {(state["pk"]["S"], state["sk"]["S"]): state for state in memory.states.values()}
        assert normalized(memory.items | states) == normalized(table_of(dynamodb))

    def deliver(index: int) -> Callable[[Any], Outcome]:
        event = ObjectEvent.from_eventbridge(events[index])
        return lambda store: (ingest_object if event.is_created else delete_object)(services(store), event)

    def run_task(body: str) -> Callable[[Any], Outcome]:
        def work(store: Any) -> Outcome:
            queue = queues[id(store)].bodies
            if body in queue:
                queue.remove(body)
            try:
                return ingest_range(services(store), RangeTask.from_json(body))
            except Exception:
                queue.append(body)  # SQS delivers it again later
                raise

        return work

    ran: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        if scenario.checkpoint_every is not None:
            patch.setattr(version_writer, "CHECKPOINT_EVERY", scenario.checkpoint_every)
        order = data.draw(st.lists(st.sampled_from(range(len(events))), min_size=len(events), max_size=8))
        for index in order:
            crash: bool = data.draw(st.booleans(), label="crash")
            step(deliver(index), crash)
            while bool(queues[id(memory)].bodies) and data.draw(st.booleans(), label="run a range task now"):
                pending = queues[id(memory)].bodies
                body: str = data.draw(st.sampled_from([*pending, *ran]), label="range task (or a duplicate)")
                crash = data.draw(st.booleans(), label="crash")
                step(run_task(body), crash)
                ran.append(body)
        while queues[id(memory)].bodies:  # SQS delivers every remaining task, in the order they came
            step(run_task(queues[id(memory)].bodies[0]), False)


def normalized(value: Any) -> Any:
    """Attribute values compared as DynamoDB stores them (numbers by value, not by spelling)."""
    if isinstance(value, dict):
        if set(value) == {"N"}:
            return {"N": Decimal(value["N"])}
        return {key: normalized(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [normalized(inner) for inner in value]
    return value
