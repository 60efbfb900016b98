"""Each target kind receives a re-delivered event through the API EventBridge uses for it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ops_fakes import Deployed, s3_event

from eventpipe.ops.context import ConsumerResources
from eventpipe.ops.redrive import BusDeliverer, DeliveryError, deliverer_for


def consumer_targeting(arn: str) -> ConsumerResources:
    return ConsumerResources(name="x", rule_arn=None, rule_name=None, dlq_url=None, target_arn=arn)


def sink(deployed: Deployed, name: str) -> tuple[str, str]:
    url = deployed.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = deployed.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def received(deployed: Deployed, url: str) -> list[dict[str, Any]]:
    messages = deployed.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_sns_target_gets_the_event_as_the_message(deployed: Deployed) -> None:
    sns = deployed.ctx.client("sns")
    topic = sns.create_topic(Name="fan-out")["TopicArn"]
    url, arn = sink(deployed, "subscriber")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    event = s3_event("a.json")

    deliverer_for(deployed.ctx, consumer_targeting(topic)).deliver(event)

    assert received(deployed, url) == [event]


def test_state_machine_target_gets_an_execution_with_the_event_as_input(deployed: Deployed) -> None:
    role = "arn:aws:iam::123456789012:role/sfn"
    sfn = deployed.ctx.client("stepfunctions")
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    machine = sfn.create_state_machine(name="workflow", definition=definition, roleArn=role)[
        "stateMachineArn"
    ]
    event = s3_event("a.json")

    deliverer_for(deployed.ctx, consumer_targeting(machine)).deliver(event)

    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == event


def test_bus_target_gets_the_event_through_put_events(deployed: Deployed) -> None:
    events = deployed.ctx.client("events")
    bus = events.create_event_bus(Name="partner")["EventBusArn"]
    url, arn = sink(deployed, "partner-sink")
    events.put_rule(Name="all", EventBusName="partner", EventPattern=json.dumps({"source": ["app.orders"]}))
    events.put_targets(Rule="all", EventBusName="partner", Targets=[{"Id": "q", "Arn": arn}])
    event = {**s3_event("a.json"), "source": "app.orders"}

    deliverer_for(deployed.ctx, consumer_targeting(bus)).deliver(event)

    [forwarded] = received(deployed, url)
    assert (forwarded["source"], forwarded["detail"]) == ("app.orders", event["detail"])


def test_put_events_entry_failures_are_refusals() -> None:
    class RefusingEvents:
        def put_events(self, **_: Any) -> dict[str, Any]:
            # PutEvents answers HTTP 200 and reports refusals per entry.
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": "aws.s3"}],
            }

    with pytest.raises(DeliveryError, match="NotAuthorizedForSourceException"):
        BusDeliverer(RefusingEvents(), "arn:aws:events:us-east-1:1:event-bus/b").deliver(s3_event("a.json"))


def test_a_consumer_without_target_output_cannot_be_redriven(deployed: Deployed) -> None:
    with pytest.raises(Exception, match="has no TargetArn output"):
        deliverer_for(deployed.ctx, ConsumerResources("x", None, None, None, None))
