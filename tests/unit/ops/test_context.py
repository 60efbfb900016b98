"""Discovery: consumers from the registry and the outputs, local-mode state file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_fakes import Deployed

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.contract.local_state import STATE_DIR_ENV
from eventpipe.ops.context import (
    LOCAL_ENV_FLAG,
    OpsContext,
    TargetKind,
    aws_errors,
    resolve_context,
)


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        ("arn:aws:lambda:us-east-1:1:function:f", TargetKind.LAMBDA),
        ("arn:aws:sqs:us-east-1:1:q", TargetKind.SQS),
        ("arn:aws:sns:us-east-1:1:t", TargetKind.SNS),
        ("arn:aws:states:us-east-1:1:stateMachine:s", TargetKind.SFN),
        ("arn:aws:events:us-east-1:1:event-bus/b", TargetKind.BUS),
    ],
)
def test_target_kind_comes_from_the_arn(arn: str, kind: TargetKind) -> None:
    assert TargetKind.from_arn(arn) is kind


def test_unsupported_target_arn_is_a_clear_error() -> None:
    with pytest.raises(EventpipeError, match="unsupported target ARN"):
        TargetKind.from_arn("arn:aws:kinesis:us-east-1:1:stream/s")


def test_consumers_follow_the_registry_then_deployed_only_ones() -> None:
    outputs = {
        "IngestRuleArn": "arn:aws:events:us-east-1:1:rule/bus/ingest",
        "IngestDlqUrl": "https://sqs/1/ingest-dlq",
        "OldThingRuleArn": "arn:aws:events:us-east-1:1:rule/bus/old",
        "ForwarderRuleArn": "arn:aws:events:us-east-1:1:rule/fwd",
    }
    registry = (_Entry("ingest"), _Entry("fresh-one"))
    ctx = OpsContext.from_outputs(outputs, registry=registry)

    consumers = ctx.consumers()

    assert [c.name for c in consumers] == ["ingest", "fresh-one", "old-thing"]
    assert [c.deployed for c in consumers] == [True, False, True]
    assert consumers[0].rule_name == "ingest"
    assert consumers[0].queues == {"dlq": "https://sqs/1/ingest-dlq"}
    assert ctx.forwarder().rule_arn == outputs["ForwarderRuleArn"]


class _Entry:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pattern = {"detail-type": ["Object Created"]}


def test_unknown_consumer_lists_the_known_ones(deployed: Deployed) -> None:
    with pytest.raises(UsageError, match=r"unknown consumer 'nope' \(known: audit, delete-sync, ingest\)"):
        deployed.ctx.consumer("nope")


def test_registry_entry_that_is_not_deployed_is_refused_for_actions() -> None:
    ctx = OpsContext.from_outputs({}, registry=(_Entry("fresh"),))

    with pytest.raises(EventpipeError, match="in the registry but not deployed"):
        ctx.deployed_consumer("fresh")


def test_the_range_worker_is_a_dead_letter_owner_only_when_the_stack_has_one() -> None:
    outputs = {
        "RangeWorkerFunctionName": "fn",
        "RangeWorkerQueueUrl": "https://sqs/work",
        "RangeWorkerDlqUrl": "https://sqs/work-dlq",
    }
    with_worker = OpsContext.from_outputs(outputs, registry=())
    without = OpsContext.from_outputs({}, registry=())

    worker = with_worker.component("range-worker")
    assert (worker.queues, worker.work_queue_url) == ({"tasks": "https://sqs/work-dlq"}, "https://sqs/work")
    assert [owner.name for owner in with_worker.dead_letter_owners()] == ["forwarder", "range-worker"]
    assert with_worker.consumers() == []  # not a consumer: it has no rule
    assert [owner.name for owner in without.dead_letter_owners()] == ["forwarder"]
    with pytest.raises(EventpipeError, match="has no range worker"):
        without.component("range-worker")


def test_missing_output_names_the_key() -> None:
    with pytest.raises(EventpipeError, match="no output 'ArchiveArn'"):
        OpsContext.from_outputs({}, registry=()).output("ArchiveArn")


# The run's generated credentials, as `eventpipe local start` writes them into the state file.
CREDENTIALS = {"access_key_id": "AKIDLOCALRUN", "secret_access_key": "generated-secret"}


def write_state(directory: Path, state: object) -> Path:
    path = directory / ".eventpipe" / "local" / "state.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(state))
    return path


def test_local_mode_reads_endpoint_and_outputs_from_the_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {"EventBusName": "bus", "IngestRuleArn": "arn:aws:events:us-east-1:123456789012:rule/bus/i"}
    write_state(
        tmp_path,
        {
            "endpoint": "http://127.0.0.1:4567",
            "pid": 1,
            "stack": "eventpipe-test",
            "region": "us-east-1",
            "outputs": outputs,
            "credentials": CREDENTIALS,
        },
    )
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / ".eventpipe" / "local"))
    monkeypatch.setenv(LOCAL_ENV_FLAG, "1")

    ctx = resolve_context(stack="ignored-in-local-mode")

    assert (ctx.local, ctx.endpoint, ctx.stack, ctx.outputs) == (
        True,
        "http://127.0.0.1:4567",
        "eventpipe-test",
        outputs,
    )
    assert ctx.client("sqs").meta.endpoint_url == "http://127.0.0.1:4567"
    assert ctx.session.get_credentials().access_key == "AKIDLOCALRUN"  # the run's own, nothing shared


def test_a_broken_state_file_is_reported_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_state(tmp_path, {"pid": 1})
    monkeypatch.setenv(STATE_DIR_ENV, str(path.parent))

    with pytest.raises(EventpipeError, match="not a valid local-mode state file") as caught:
        resolve_context(local=True)

    assert str(path) in str(caught.value)


def test_deployed_stack_not_found_is_one_line(aws: None) -> None:
    with pytest.raises(EventpipeError, match="stack eventpipe-nope not found in us-east-1"):
        resolve_context(stack="eventpipe-nope")


@pytest.mark.parametrize("stack", ["bad stack!", "9lives", "eventpipe_prod", "x" * 129])
def test_an_invalid_stack_name_is_a_usage_error_before_any_aws_call(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTPIPE_LOCAL", raising=False)
    # No credentials and no region are set up here: the name alone is refused.
    with pytest.raises(UsageError, match="invalid stack name"):
        resolve_context(stack=stack)


def test_botocore_errors_become_one_line_eventpipe_errors(deployed: Deployed) -> None:
    with (
        pytest.raises(EventpipeError, match=r"^listing: AWS.SimpleQueueService.NonExistentQueue: ") as caught,
        aws_errors("listing"),
    ):
        deployed.sqs.get_queue_attributes(QueueUrl=deployed.url("AuditDlqUrl") + "-gone")

    assert "\n" not in str(caught.value)


def test_the_state_dir_override_of_local_mode_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = {"endpoint": "http://127.0.0.1:9", "outputs": {}, "credentials": CREDENTIALS}
    (elsewhere / "state.json").write_text(json.dumps(state))
    monkeypatch.setenv(STATE_DIR_ENV, str(elsewhere))

    assert resolve_context(local=True).endpoint == "http://127.0.0.1:9"

    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "empty"))
    with pytest.raises(EventpipeError, match="local mode is not running"):
        resolve_context(local=True)
