"""Fidelity of local mode: each test states the AWS behaviour the emulator reproduces and checks it
through the public AWS APIs only (S3, EventBridge, SQS), against the real deployed stack."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from eventpipe.contract.event_schema import load_s3_event_validator

pytestmark = pytest.mark.integration

Mailbox = Any  # conftest.Mailbox
MakeMailbox = Callable[[str], tuple[Mailbox, str]]
WaitFor = Callable[..., Any]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def events_for(mailbox: Mailbox, bucket: str, key: str) -> list[dict[str, Any]]:
    encoded = quote_plus(key, safe="/")
    return mailbox.bodies(
        lambda e: (
            e.get("detail", {}).get("bucket", {}).get("name") == bucket
            and e["detail"]["object"]["key"] == encoded
        )
    )


def wait_events(
    wait_for: WaitFor, mailbox: Mailbox, bucket: str, key: str, count: int
) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (found := events_for(mailbox, bucket, key)) and len(found) >= count and found,
        message=f"{count} event(s) for {key}",
    )


def assert_aws_shaped(found: list[dict[str, Any]]) -> None:
    """Validate against schemas/s3-eventbridge-event.schema.json (the same schema the fixtures obey)."""
    validate = load_s3_event_validator()
    for event in found:
        validate(event)


@pytest.fixture
def probe_rule(events: Any) -> Any:
    """Create rules for a test and delete them (targets first) afterwards."""
    created: list[tuple[str, str]] = []

    def make(
        *,
        bus: str = "default",
        pattern: dict[str, Any],
        targets: list[dict[str, Any]],
        state: str = "ENABLED",
    ) -> str:
        name = unique("probe")
        arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State=state)[
            "RuleArn"
        ]
        created.append((name, bus))
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return str(arn)

    yield make
    for name, bus in created:
        try:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]]
            if ids:
                events.remove_targets(Rule=name, EventBusName=bus, Ids=ids)
            events.delete_rule(Name=name, EventBusName=bus)
        except events.exceptions.ResourceNotFoundException:
            pass  # its bus was removed with the test's custom bus


def delete_bus(events: Any, bus: str) -> None:
    for name in [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"]]:
        ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]]
        if ids:
            events.remove_targets(Rule=name, EventBusName=bus, Ids=ids)
        events.delete_rule(Name=name, EventBusName=bus)
    events.delete_event_bus(Name=bus)


@pytest.fixture
def custom_bus(events: Any) -> Any:
    bus = unique("custom-bus")
    events.create_event_bus(Name=bus)
    yield bus
    delete_bus(events, bus)


def put_custom(
    events: Any, detail: dict[str, Any], *, bus: str = "default", source: str = "test.fidelity", **extra: Any
) -> str:
    entry = {
        "Source": source,
        "DetailType": "probe",
        "Detail": json.dumps(detail),
        "EventBusName": bus,
        **extra,
    }
    result = events.put_events(Entries=[entry])
    assert result["FailedEntryCount"] == 0, result
    return str(result["Entries"][0]["EventId"])


# ---- 1. S3 events ---------------------------------------------------------------------------------
def test_s3_put_event_is_aws_shaped(
    wait_for: WaitFor, s3: Any, outputs: dict[str, str], audit_mailbox: Mailbox
) -> None:
    """AWS: S3 publishes "Object Created" with reason PutObject, a UUID `id`, `etag` without quotes,
    `size`, a hex `sequencer`, `version-id` on a versioned bucket, the key URL-encoded form-style
    (space -> '+'), `resources` = [bucket ARN] and request metadata."""
    bucket, key = outputs["BucketName"], f"fidelity/{unique('a file')}+plus=&.csv"
    put = s3.put_object(Bucket=bucket, Key=key, Body=b"id,name\n1,x\n")

    (event,) = wait_events(wait_for, audit_mailbox, bucket, key, 1)

    detail, obj = event["detail"], event["detail"]["object"]
    assert event["detail-type"] == "Object Created"
    assert event["source"] == "aws.s3"
    assert event["resources"] == [f"arn:aws:s3:::{bucket}"]
    assert uuid.UUID(event["id"])
    assert detail["reason"] == "PutObject"
    assert obj["key"] == quote_plus(key, safe="/")
    assert " " not in obj["key"]
    assert obj["etag"] == put["ETag"].strip('"')
    assert obj["size"] == len(b"id,name\n1,x\n")
    assert obj["version-id"] == put["VersionId"]
    int(obj["sequencer"], 16)
    assert {"request-id", "requester", "source-ip-address"} <= detail.keys()
    assert_aws_shaped([event])


def test_sequencer_increases_per_key_and_ids_are_unique(
    wait_for: WaitFor, s3: Any, outputs: dict[str, str], audit_mailbox: Mailbox
) -> None:
    """AWS: the `sequencer` of events for the same key increases with each change (compared as
    hex strings of equal length) and every event has its own `id`."""
    bucket, key = outputs["BucketName"], f"fidelity/{unique('seq')}.csv"
    for body in (b"1", b"22", b"333"):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.delete_object(Bucket=bucket, Key=key)

    found = wait_events(wait_for, audit_mailbox, bucket, key, 4)

    # Delivery is unordered (like AWS): put the events back in request order (sizes 1, 2, 3, delete).
    in_request_order = sorted(found, key=lambda e: e["detail"]["object"].get("size", 99))
    sequencers = [e["detail"]["object"]["sequencer"] for e in in_request_order]
    width = max(len(s) for s in sequencers)
    padded = [s.rjust(width, "0") for s in sequencers]
    assert padded == sorted(padded)
    assert len(set(padded)) == 4
    assert_aws_shaped(found)
    assert len({e["id"] for e in found}) == 4


def test_multipart_upload_emits_one_complete_multipart_upload_event(
    wait_for: WaitFor, s3: Any, outputs: dict[str, str], audit_mailbox: Mailbox, settle: Callable[[], None]
) -> None:
    """AWS: a multipart upload produces ONE "Object Created" event, reason CompleteMultipartUpload
    (moto alone emits an extra PutObject)."""
    bucket, key = outputs["BucketName"], f"fidelity/{unique('multi')}.csv"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1024)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    wait_events(wait_for, audit_mailbox, bucket, key, 1)
    settle()

    found = events_for(audit_mailbox, bucket, key)
    assert [e["detail"]["reason"] for e in found] == ["CompleteMultipartUpload"]
    assert_aws_shaped(found)


def test_copy_and_deletes_carry_reason_and_deletion_type(
    wait_for: WaitFor, s3: Any, outputs: dict[str, str], audit_mailbox: Mailbox
) -> None:
    """AWS: CopyObject -> reason CopyObject; DeleteObject on a versioned bucket creates a delete
    marker ("Object Deleted", deletion-type "Delete Marker Created", the marker's version-id);
    deleting a specific version is "Permanently Deleted"."""
    bucket = outputs["BucketName"]
    source, copy = f"fidelity/{unique('src')}.csv", f"fidelity/{unique('copy')}.csv"
    s3.put_object(Bucket=bucket, Key=source, Body=b"a")
    copied = s3.copy_object(Bucket=bucket, Key=copy, CopySource={"Bucket": bucket, "Key": source})
    marker = s3.delete_object(Bucket=bucket, Key=copy)
    s3.delete_object(Bucket=bucket, Key=copy, VersionId=copied["VersionId"])

    found = wait_events(wait_for, audit_mailbox, bucket, copy, 3)

    by_kind = {e["detail"].get("deletion-type", e["detail-type"]): e for e in found}
    created = by_kind["Object Created"]
    marked, removed = by_kind["Delete Marker Created"], by_kind["Permanently Deleted"]

    assert created["detail"]["reason"] == "CopyObject"
    assert marked["detail-type"] == "Object Deleted"
    assert marked["detail"]["reason"] == "DeleteObject"
    assert marked["detail"]["deletion-type"] == "Delete Marker Created"
    assert marked["detail"]["object"]["version-id"] == marker["VersionId"]
    assert removed["detail"]["deletion-type"] == "Permanently Deleted"
    assert removed["detail"]["object"]["version-id"] == copied["VersionId"]
    assert_aws_shaped(found)


def test_s3_events_reach_the_default_bus_only(
    wait_for: WaitFor,
    s3: Any,
    events: Any,
    outputs: dict[str, str],
    custom_bus: str,
    probe_rule: Any,
    mailbox_factory: MakeMailbox,
    settle: Callable[[], None],
) -> None:
    """AWS: S3 sends its notifications to the account's default bus only; a custom bus sees them only
    through a forwarding rule (moto alone delivers to rules on every bus)."""
    bucket, key = outputs["BucketName"], f"fidelity/{unique('bus')}.csv"
    on_default, default_arn = mailbox_factory(unique("on-default"))
    on_custom, custom_arn = mailbox_factory(unique("on-custom"))
    pattern = {"source": ["aws.s3"], "detail": {"object": {"key": [quote_plus(key, safe="/")]}}}
    probe_rule(pattern=pattern, targets=[{"Id": "q", "Arn": default_arn}])
    probe_rule(bus=custom_bus, pattern=pattern, targets=[{"Id": "q", "Arn": custom_arn}])

    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    wait_for(on_default.bodies, message="the event on the default bus")
    settle()

    assert on_custom.bodies() == []


# ---- 2. rules ------------------------------------------------------------------------------------
def test_disabled_rule_does_not_fire(
    wait_for: WaitFor, events: Any, probe_rule: Any, mailbox_factory: MakeMailbox, settle: Callable[[], None]
) -> None:
    """AWS: a rule in state DISABLED matches nothing; an identical ENABLED rule fires."""
    marker = unique("state")
    enabled, enabled_arn = mailbox_factory(unique("enabled"))
    disabled, disabled_arn = mailbox_factory(unique("disabled"))
    pattern = {"source": ["test.fidelity"], "detail": {"marker": [marker]}}
    probe_rule(pattern=pattern, targets=[{"Id": "q", "Arn": enabled_arn}])
    probe_rule(pattern=pattern, targets=[{"Id": "q", "Arn": disabled_arn}], state="DISABLED")

    put_custom(events, {"marker": marker})
    wait_for(enabled.bodies, message="delivery to the enabled rule")
    settle()

    assert disabled.bodies() == []


def test_patterns_match_inside_arrays_of_objects(
    wait_for: WaitFor, events: Any, probe_rule: Any, mailbox_factory: MakeMailbox, settle: Callable[[], None]
) -> None:
    """AWS: a pattern field matches when any element of an array of objects matches
    (`{"records": {"type": ["b"]}}` matches `{"records": [{"type": "a"}, {"type": "b"}]}`)."""
    marker = unique("arrays")
    inbox, arn = mailbox_factory(unique("arrays"))
    probe_rule(
        pattern={"detail": {"marker": [marker], "records": {"type": ["b"]}}},
        targets=[{"Id": "q", "Arn": arn}],
    )

    hit = put_custom(events, {"marker": marker, "records": [{"type": "a"}, {"type": "b"}]})
    put_custom(events, {"marker": marker, "records": [{"type": "a"}, {"type": "c"}]})
    wait_for(inbox.bodies, message="the matching event")
    settle()

    assert [e["id"] for e in inbox.bodies()] == [hit]


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail": {"key": [{"wildcard": "a**b"}]}},
        {"detail": {"key": [{"no-such-operator": "x"}]}},
        {"detail": {"size": [{"numeric": [">", 10, "<", 5]}]}},
    ],
    ids=["double-wildcard", "unknown-operator", "empty-numeric-range"],
)
def test_invalid_pattern_is_rejected_with_an_aws_style_error(events: Any, pattern: dict[str, Any]) -> None:
    """AWS: PutRule with an invalid pattern fails with InvalidEventPatternException and the message
    "Event pattern is not valid. Reason: ..."; nothing is created."""
    name = unique("invalid")
    with pytest.raises(ClientError) as raised:
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))

    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidEventPatternException"
    assert error["Message"].startswith("Event pattern is not valid. Reason: ")
    assert error["Message"].count("Event pattern is not valid") == 1
    assert name not in [r["Name"] for r in events.list_rules(NamePrefix=name)["Rules"]]


def test_target_input_path_transformer_and_constant(
    wait_for: WaitFor, events: Any, probe_rule: Any, mailbox_factory: MakeMailbox
) -> None:
    """AWS: InputPath sends the selected part, InputTransformer fills placeholders (JSON values
    outside quotes, raw text inside quotes), Input sends the constant instead of the event."""
    marker = unique("input")
    path_box, path_arn = mailbox_factory(unique("path"))
    transform_box, transform_arn = mailbox_factory(unique("transform"))
    constant_box, constant_arn = mailbox_factory(unique("constant"))
    probe_rule(
        pattern={"detail": {"marker": [marker]}},
        targets=[
            {"Id": "path", "Arn": path_arn, "InputPath": "$.detail.item"},
            {
                "Id": "transform",
                "Arn": transform_arn,
                "InputTransformer": {
                    "InputPathsMap": {"name": "$.detail.item.name", "size": "$.detail.item.size"},
                    "InputTemplate": '{"name": <name>, "size": <size>, "text": "<name> has <size> bytes"}',
                },
            },
            {"Id": "constant", "Arn": constant_arn, "Input": '{"fixed": true}'},
        ],
    )

    put_custom(events, {"marker": marker, "item": {"name": "a.json", "size": 3}})

    assert wait_for(path_box.bodies) == [{"name": "a.json", "size": 3}]
    assert wait_for(transform_box.bodies) == [{"name": "a.json", "size": 3, "text": "a.json has 3 bytes"}]
    assert wait_for(constant_box.bodies) == [{"fixed": True}]


def test_sns_and_step_functions_targets_receive_the_event(
    wait_for: WaitFor, aws: Any, events: Any, emulator: Any, probe_rule: Any, mailbox_factory: MakeMailbox
) -> None:
    """AWS: an SNS topic target publishes the event as the message; a Step Functions target starts
    one execution with the event as its input."""
    sns, sfn = aws("sns"), aws("stepfunctions")
    marker = unique("targets")
    inbox, inbox_arn = mailbox_factory(unique("sns-sub"))
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"}
    )
    machine = sfn.create_state_machine(
        name=unique("machine"),
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{emulator.account}:role/sfn",
    )["stateMachineArn"]
    probe_rule(
        pattern={"detail": {"marker": [marker]}},
        targets=[{"Id": "topic", "Arn": topic}, {"Id": "machine", "Arn": machine}],
    )

    event_id = put_custom(events, {"marker": marker})

    assert [e["id"] for e in wait_for(inbox.bodies, message="the SNS delivery")] == [event_id]
    (execution,) = wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"])
    started = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"])["id"] == event_id
    sns.delete_topic(TopicArn=topic)
    sfn.delete_state_machine(stateMachineArn=machine)


# ---- 3. forwarding and archive -------------------------------------------------------------------
def test_forwarding_keeps_the_whole_event_and_the_archive_records_it(
    wait_for: WaitFor,
    s3: Any,
    events: Any,
    outputs: dict[str, str],
    audit_mailbox: Mailbox,
    probe_rule: Any,
    mailbox_factory: MakeMailbox,
    settle: Callable[[], None],
) -> None:
    """AWS: a rule whose target is another bus forwards the event unchanged (id, time, resources,
    detail); the project bus's archive records every event it receives (EventCount, SizeBytes)."""
    bucket, key = outputs["BucketName"], f"fidelity/{unique('forward')}.csv"
    on_default, arn = mailbox_factory(unique("default-copy"))
    probe_rule(
        pattern={"source": ["aws.s3"], "detail": {"object": {"key": [quote_plus(key, safe="/")]}}},
        targets=[{"Id": "q", "Arn": arn}],
    )
    settle()
    before = events.describe_archive(ArchiveName=outputs["ArchiveName"])

    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    (original,) = wait_for(on_default.bodies, message="the event on the default bus")
    (forwarded,) = wait_events(wait_for, audit_mailbox, bucket, key, 1)
    settle()

    assert forwarded == original
    after = events.describe_archive(ArchiveName=outputs["ArchiveName"])
    assert after["EventCount"] == before["EventCount"] + 1
    # SizeBytes counts what the archive holds: it grows by about the event's size.
    assert after["SizeBytes"] - before["SizeBytes"] >= len(json.dumps(original)) // 2


# ---- 4. retries and dead letters -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "exhausted", "retries"),
    [
        ({"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}, "MaximumRetryAttempts", "2"),
        ({"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 60}, "MaximumEventAgeInSeconds", None),
    ],
    ids=["attempts", "event-age"],
)
def test_undeliverable_event_is_retried_then_dead_lettered_with_attributes(
    wait_for: WaitFor,
    events: Any,
    sqs: Any,
    probe_rule: Any,
    mailbox_factory: MakeMailbox,
    emulator: Any,
    policy: dict[str, int],
    exhausted: str,
    retries: str | None,
) -> None:
    """AWS: EventBridge retries a failed delivery per the target's RetryPolicy (attempts or event age,
    whichever ends first), then sends the event to the target's DLQ with the attributes ERROR_CODE,
    ERROR_MESSAGE, RULE_ARN, TARGET_ARN, RETRY_ATTEMPTS and the event as the body.
    (Local time is scaled: one AWS second of backoff/age lasts 10 ms.)"""
    marker = unique("dlq")
    dlq, dlq_arn = mailbox_factory(unique("dlq"))
    missing = f"arn:aws:sqs:{emulator.region}:{emulator.account}:{unique('missing-queue')}"
    rule_arn = probe_rule(
        pattern={"detail": {"marker": [marker]}},
        targets=[{"Id": "gone", "Arn": missing, "RetryPolicy": policy, "DeadLetterConfig": {"Arn": dlq_arn}}],
    )

    event_id = put_custom(events, {"marker": marker})
    wait_for(dlq.drain, timeout=30, message="the dead letter")

    (message,) = dlq.messages
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    body = json.loads(message["Body"])
    assert body["id"] == event_id
    assert body["detail"] == {"marker": marker}
    assert attributes["RULE_ARN"] == rule_arn
    assert attributes["TARGET_ARN"] == missing
    assert attributes["ERROR_CODE"]
    assert attributes["ERROR_MESSAGE"]
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == exhausted
    if retries is not None:
        assert attributes["RETRY_ATTEMPTS"] == retries
    else:
        assert int(attributes["RETRY_ATTEMPTS"]) >= 1


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"MaximumRetryAttempts": 186},
            "maximumRetryAttempts' failed to satisfy constraint: Member must have "
            "value less than or equal to 185",
        ),
        (
            {"MaximumEventAgeInSeconds": 86_401},
            "maximumEventAgeInSeconds' failed to satisfy constraint: Member must "
            "have value less than or equal to 86400",
        ),
    ],
    ids=["attempts-above-185", "age-above-86400"],
)
def test_retry_policy_limits_are_enforced(
    events: Any, probe_rule: Any, emulator: Any, policy: dict[str, int], message: str
) -> None:
    """AWS: PutTargets rejects a RetryPolicy outside MaximumRetryAttempts 0-185 and
    MaximumEventAgeInSeconds 60-86400 with a ValidationException."""
    arn = f"arn:aws:sqs:{emulator.region}:{emulator.account}:anything"
    with pytest.raises(ClientError) as raised:
        probe_rule(pattern={"source": ["x"]}, targets=[{"Id": "q", "Arn": arn, "RetryPolicy": policy}])

    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]


# ---- 5. replays ----------------------------------------------------------------------------------
@pytest.fixture
def replay_bus(events: Any, emulator: Any) -> Any:
    """A throwaway bus with an archive of everything, removed afterwards."""
    bus = unique("replay-bus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    archive = unique("archive")[:48]
    archive_arn = events.create_archive(ArchiveName=archive, EventSourceArn=bus_arn)["ArchiveArn"]
    yield bus, bus_arn, archive, archive_arn
    events.delete_archive(ArchiveName=archive)
    delete_bus(events, bus)


def test_replay_is_async_honours_window_and_filter_arns_and_stamps_replay_name(
    wait_for: WaitFor,
    events: Any,
    replay_bus: Any,
    probe_rule: Any,
    mailbox_factory: MakeMailbox,
    settle: Callable[[], None],
) -> None:
    """AWS: StartReplay returns at once in state STARTING; the replay then runs in the background
    (DescribeReplay: RUNNING -> COMPLETED, EventLastReplayedTime) and sends only the archived events
    received within [EventStartTime, EventEndTime] to only the rules in FilterArns, each carrying a
    top-level `replay-name`; replayed events are not archived again."""
    bus, bus_arn, archive, archive_arn = replay_bus
    marker = unique("replay")
    chosen, chosen_arn = mailbox_factory(unique("chosen"))
    other, other_arn = mailbox_factory(unique("other"))
    pattern = {"detail": {"marker": [marker]}}
    chosen_rule = probe_rule(bus=bus, pattern=pattern, targets=[{"Id": "q", "Arn": chosen_arn}])
    probe_rule(bus=bus, pattern=pattern, targets=[{"Id": "q", "Arn": other_arn}])

    before_window = put_custom(events, {"marker": marker, "n": 0}, bus=bus)
    window_start = math.floor(time.time()) + 1  # the API has 1-second precision
    wait_for(lambda: time.time() >= window_start, timeout=3, message="the next second")
    in_window = {put_custom(events, {"marker": marker, "n": n}, bus=bus) for n in (1, 2)}
    settle()
    window_end = math.ceil(time.time()) + 1
    originals = {e["id"] for e in chosen.bodies()}
    assert originals == in_window | {before_window}
    archived = events.describe_archive(ArchiveName=archive)["EventCount"]

    name = unique("replay")
    started = events.start_replay(
        ReplayName=name,
        EventSourceArn=archive_arn,
        EventStartTime=datetime.fromtimestamp(window_start, UTC),
        EventEndTime=datetime.fromtimestamp(window_end, UTC),
        Destination={"Arn": bus_arn, "FilterArns": [chosen_rule]},
    )
    assert started["State"] == "STARTING"
    described = wait_for(
        lambda: (d := events.describe_replay(ReplayName=name))["State"] == "COMPLETED" and d,
        timeout=30,
        message="the replay to complete",
    )
    settle()

    replayed = [e for e in chosen.bodies() if "replay-name" in e]
    assert {e["id"] for e in replayed} == in_window
    assert {e["replay-name"] for e in replayed} == {name}
    assert not any("replay-name" in e for e in other.bodies())
    assert described["EventLastReplayedTime"]
    assert described["ReplayEndTime"]
    assert events.describe_archive(ArchiveName=archive)["EventCount"] == archived
    assert name in [r["ReplayName"] for r in events.list_replays(State="COMPLETED")["Replays"]]


def test_a_running_replay_can_be_cancelled(wait_for: WaitFor, events: Any, replay_bus: Any) -> None:
    """AWS: CancelReplay answers CANCELLING and the replay ends CANCELLED; a finished replay can not be
    cancelled (IllegalStatusException)."""
    _, bus_arn, _, archive_arn = replay_bus
    window = {"EventStartTime": datetime.fromtimestamp(0, UTC), "EventEndTime": datetime.now(UTC)}
    name = unique("cancel")
    events.start_replay(ReplayName=name, EventSourceArn=archive_arn, Destination={"Arn": bus_arn}, **window)

    assert events.cancel_replay(ReplayName=name)["State"] == "CANCELLING"
    wait_for(
        lambda: events.describe_replay(ReplayName=name)["State"] == "CANCELLED",
        timeout=30,
        message="the replay to be cancelled",
    )
    with pytest.raises(ClientError) as raised:
        events.cancel_replay(ReplayName=name)
    assert raised.value.response["Error"]["Code"] == "IllegalStatusException"
