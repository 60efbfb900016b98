"""The in-memory store of the exhaustive checker behaves like `DynamoRecordStore` on DynamoDB (moto):
the same histories, delivered in the same sampled orders (with crashes), leave identical tables."""

from __future__ import annotations

from collections.abc import Iterator
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
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.ports import LeasePolicy, Services
from tests.fuzzing import examples

from ..conftest import REGION, TABLE, create_table
from .exhaustive import SCENARIOS, operation_sequences, perform
from .memory_backend import CrashAfterWrites, MemoryRecordStore, MemoryReports
from .s3_model import KeyHistory, ModelReader

HISTORIES = [
    (name, operations)
    for name in SCENARIOS
    for operations in operation_sequences(SCENARIOS[name].versioned, 3)
]


class CrashingDynamoStore(DynamoRecordStore):
    """`DynamoRecordStore` whose next batch write dies after its first item, like the memory store's fault.

    "Dies after a write": the request sent (by a pool thread) has landed before the crash is raised."""

    fault = False

    def writer(self, on_refused: Any = None) -> Any:
        writer = super().writer(on_refused)
        store = self
        send = writer._send

        def send_then_maybe_die() -> None:
            if store.fault and len(writer._pending) > 1:
                store.fault = False
                first = dict([next(iter(writer._pending.items()))])
                writer._pending = first
                send()
                writer.flush()  # the request has landed (a pool sends it from another thread)
                raise CrashAfterWrites("simulated crash in the middle of a write")
            if store.fault:
                store.fault = False
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
@given(history=st.sampled_from(HISTORIES), data=st.data())
def test_the_memory_store_leaves_the_same_table_as_dynamodb(
    dynamodb: Any, aws_env: None, history: Any, data: st.DataObject
) -> None:
    name, operations = history
    scenario = SCENARIOS[name]
    for existing in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=existing)
    create_table(dynamodb)
    key_history = KeyHistory(scenario.key, scenario.versioned)
    events = [perform(key_history, scenario, operation) for operation in operations]
    memory, dynamo = MemoryRecordStore(), CrashingDynamoStore(dynamodb, TABLE, sleep=lambda _: None)

    def services(store: Any) -> Services:
        return Services(
            store=store,
            objects=ModelReader(key_history),
            reports=MemoryReports(),
            datasets=DatasetRegistry.load(),
            max_json_bytes=1024 * 1024,
            lease=LeasePolicy(max_wait_seconds=0.0),
            clock=lambda: 1_800_000_000.0,
            sleep=lambda _: None,
        )

    order = data.draw(st.lists(st.sampled_from(range(len(events))), min_size=len(events), max_size=8))
    for index in order:
        crash = data.draw(st.booleans(), label="crash")
        outcomes = []
        for store in (memory, dynamo):
            if crash:
                store.fault = "crash" if store is memory else True  # type: ignore[attr-defined]
            event = ObjectEvent.from_eventbridge(events[index])
            try:
                outcome = (ingest_object if event.is_created else delete_object)(services(store), event)
                outcomes.append(outcome.status)
            except Exception as failure:
                outcomes.append(type(failure).__name__)
            store.fault = None if store is memory else False  # type: ignore[attr-defined]
        assert outcomes[0] == outcomes[1]
        states = {(state["pk"]["S"], state["sk"]["S"]): state for state in memory.states.values()}
        assert normalized(memory.items | states) == normalized(table_of(dynamodb))


def normalized(value: Any) -> Any:
    """Attribute values compared as DynamoDB stores them (numbers by value, not by spelling)."""
    if isinstance(value, dict):
        if set(value) == {"N"}:
            return {"N": Decimal(value["N"])}
        return {key: normalized(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [normalized(inner) for inner in value]
    return value
