"""Read-only helpers over a synthesized CloudFormation template (plain dicts, no CDK needed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    outdir: Path
    stack_name: str
    # consumer name -> logical ids of the resources its construct created, and its output keys
    consumer_resources: dict[str, frozenset[str]] = field(default_factory=dict)
    consumer_outputs: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    @property
    def outputs(self) -> dict[str, Any]:
        return {key: output["Value"] for key, output in self.template["Outputs"].items()}

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def output_ref(self, key: str) -> str:
        """Logical id of the resource an output points at (Ref or GetAtt)."""
        return referenced_id(self.outputs[key])

    def alarms_on(self, predicate: Any) -> list[dict[str, Any]]:
        return [
            r["Properties"]
            for r in self.of_type("AWS::CloudWatch::Alarm").values()
            if predicate(r["Properties"])
        ]

    def statements(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every policy statement of the template: identity, resource and key policies."""
        for logical_id, resource in self.resources.items():
            props = resource.get("Properties", {})
            documents = [
                props.get(name) for name in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument")
            ]
            documents += [policy["PolicyDocument"] for policy in props.get("Policies", [])]
            for document in documents:
                if document:
                    for statement in document["Statement"]:
                        yield logical_id, statement


def referenced_id(value: Any) -> str:
    if "Ref" in value:
        return value["Ref"]
    if "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    raise AssertionError(f"not a reference: {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def load(outdir: Path, stack_name: str, **ownership: Any) -> Synthesized:
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    return Synthesized(template, outdir, stack_name, **ownership)


TLS_DENY = {"Bool": {"aws:SecureTransport": "false"}}
FOURTEEN_DAYS = 14 * 24 * 3600


def denies_insecure_transport(synth: Synthesized, policy_type: str, target_key: str, logical_id: str) -> bool:
    """True when a resource policy of `policy_type` attached to `logical_id` denies non-TLS requests."""
    for policy in synth.of_type(policy_type).values():
        props = policy["Properties"]
        attached = [referenced_id(ref) for ref in as_list(props[target_key])]
        if logical_id in attached:
            for statement in props["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Deny" and statement.get("Condition") == TLS_DENY:
                    return True
    return False


def assert_secure_queue(synth: Synthesized, logical_id: str, retention_seconds: int = FOURTEEN_DAYS) -> None:
    props = synth.props(logical_id)
    assert synth.resources[logical_id]["Type"] == "AWS::SQS::Queue"
    assert props.get("SqsManagedSseEnabled") is True, f"{logical_id} is not encrypted with SQS-managed SSE"
    assert "KmsMasterKeyId" not in props, f"{logical_id}: a KMS key would need an EventBridge grant"
    assert props["MessageRetentionPeriod"] == retention_seconds
    assert denies_insecure_transport(synth, "AWS::SQS::QueuePolicy", "Queues", logical_id), logical_id


def notifies_topic(alarm: dict[str, Any], topic_id: str) -> bool:
    return {"Ref": topic_id} in alarm.get("AlarmActions", []) and {"Ref": topic_id} in alarm.get(
        "OKActions", []
    )


def queue_depth_alarms(synth: Synthesized, queue_id: str) -> list[dict[str, Any]]:
    return synth.alarms_on(
        lambda a: (
            a.get("Namespace") == "AWS/SQS"
            and a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and a.get("Dimensions")
            == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
        )
    )


def rule_alarms(synth: Synthesized, rule_id: str) -> dict[str, dict[str, Any]]:
    """Alarms on a rule's EventBridge metrics, by metric name."""
    found = synth.alarms_on(
        lambda a: (
            a.get("Namespace") == "AWS/Events"
            and {"Name": "RuleName", "Value": {"Ref": rule_id}} in a.get("Dimensions", [])
        )
    )
    return {alarm["MetricName"]: alarm for alarm in found}
