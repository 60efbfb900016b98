"""`eventpipe local start -c KEY=VALUE`: the override reaches the stage config of the deployed stack,
exactly as `cdk synth -c` would give it (here `log_level`, which every function gets as
POWERTOOLS_LOG_LEVEL, and `fanout_threshold_bytes`, which makes a 3 MB object fan out locally)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from eventpipe.local.deploy import parse_context, template_path
from eventpipe.local.emulator import Emulator
from eventpipe.ops.object_records import Span, position_items
from functions.core.domain.object_state import ObjectState
from functions.core.domain.rejects_report import report_key
from functions.core.domain.table_layout import state_key

pytestmark = pytest.mark.integration
OVERRIDE = "eventpipe.dev.log_level=DEBUG"
FANOUT = "eventpipe.dev.fanout_threshold_bytes=1048576"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    context = parse_context([OVERRIDE, FANOUT], "dev")
    running = Emulator.start(state_dir=tmp_path_factory.mktemp("context"), context=context)
    try:
        yield running
    finally:
        running.stop()


def test_a_context_override_reaches_every_deployed_function(emulator: Emulator) -> None:
    functions = emulator.client("lambda").list_functions()["Functions"]

    assert functions
    assert {f["Environment"]["Variables"].get("POWERTOOLS_LOG_LEVEL") for f in functions} == {"DEBUG"}


def test_the_override_is_synthesized_into_a_template_of_its_own(emulator: Emulator) -> None:
    deployed = Path(emulator.state["template"])
    resources = json.loads(deployed.read_text())["Resources"].values()
    levels = {
        r["Properties"]["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"]
        for r in resources
        if r["Type"] == "AWS::Lambda::Function"
    }

    assert deployed == template_path("dev", context=parse_context([OVERRIDE, FANOUT], "dev"))
    assert deployed != template_path("dev")  # the plain template keeps describing the sources
    assert levels == {"DEBUG"}


def test_an_object_above_the_threshold_fans_out_and_lands_complete(emulator: Emulator) -> None:
    """The same fan-out as on AWS (ingest -> range work queue -> range worker through the emulator's SQS
    event source): every record at the position one reader gives it, the rejects report, one commit."""
    outputs = emulator.outputs
    bucket, table = outputs["BucketName"], outputs["TableName"]
    lines = [
        "" if n % 1000 == 0 else "not json" if n % 997 == 0 else json.dumps({"n": n, "pad": "x" * 40})
        for n in range(1, 60_001)
    ]
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 3 * 1048576  # at least 4 ranges of 1 MiB
    emulator.client("s3").put_object(Bucket=bucket, Key="data/fanned.jsonl", Body=body)
    emulator.wait_idle(timeout=600)

    dynamodb = emulator.client("dynamodb")
    owner = f"{bucket}/data/fanned.jsonl"
    state = ObjectState.from_item(
        dynamodb.get_item(TableName=table, Key=state_key(owner), ConsistentRead=True).get("Item")
    )
    items = list(position_items(dynamodb, table, "data/fanned.jsonl", owner=owner, span=Span.of_state(None)))
    expected = {n: {"n": n, "pad": "x" * 40} for n, line in enumerate(lines, start=1) if line.startswith("{")}
    rejected = [n for n, line in enumerate(lines, start=1) if line == "not json"]

    assert (state.status, state.dirty, state.fanout_token) == ("present", False, None)
    assert state.last_position == len(lines)
    assert {int(item["sk"]["S"]): _plain(item["data"]) for item in items} == expected
    assert [int(item["sk"]["S"]) for item in items] == sorted(expected)  # read back in order
    report = (
        emulator.client("s3")
        .get_object(
            Bucket=outputs["RejectsBucketName"],
            Key=report_key(bucket, "data/fanned.jsonl", state.sequencer or ""),
        )["Body"]
        .read()
    )
    assert [json.loads(entry)["position"] for entry in report.splitlines()] == rejected
    # It was the range worker that wrote and committed it (the last range's worker says so).
    worker_log = emulator.state_dir / "logs" / f"{outputs['RangeWorkerFunctionName']}.log"
    assert "the last: object committed with 59880 records" in worker_log.read_text()


def _plain(value: dict[str, Any]) -> Any:
    return TypeDeserializer().deserialize(value)
