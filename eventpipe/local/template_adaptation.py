"""Template adaptation: what local mode changes in the synthesized template so moto 5.2.5 can deploy it.

The deployed template is otherwise the real synthesized one. `adapt_template` makes the changes
T1-T9 before CreateStack; `post_deploy` applies, through the AWS APIs after CREATE_COMPLETE, what moto's
CloudFormation ignores (T6, T9). Each adaptation, the AWS behaviour it keeps and the test that shows it
are listed in docs/local-mode.md. Used only by `deploy.py`; nothing here patches moto.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STUB_HANDLER_SOURCE = "def lambda_handler(event, context):\n    raise RuntimeError('run by LambdaRuntime')\n"
_REMOVED_TYPES = (
    "AWS::CDK::Metadata",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::CloudWatch::Alarm",
)
# CloudFormation alarm properties that PutMetricAlarm takes under the same name.
_ALARM_FIELDS = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


@dataclass
class AdaptedTemplate:
    template: dict[str, Any]
    # Resources whose settings moto's CloudFormation ignores, applied by post_deploy.
    invoke_configs: list[dict[str, Any]] = field(default_factory=list)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> properties
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> properties


def adapt_template(original: dict[str, Any]) -> AdaptedTemplate:
    template = copy.deepcopy(original)
    template.get("Parameters", {}).pop("BootstrapVersion", None)  # T1
    template.get("Rules", {}).pop("CheckBootstrapVersion", None)
    if not template.get("Rules"):
        template.pop("Rules", None)
    resources: dict[str, Any] = template["Resources"]
    adapted = AdaptedTemplate(template=template)
    removed = set()
    for logical_id, resource in list(resources.items()):
        kind = resource.get("Type", "")
        if kind == "AWS::Lambda::EventInvokeConfig":
            adapted.invoke_configs.append(resource.get("Properties", {}))
        if kind == "AWS::CloudWatch::Alarm":
            adapted.alarms[logical_id] = resource.get("Properties", {})
        if kind in _REMOVED_TYPES or kind.startswith("Custom::"):  # T2, T6
            removed.add(logical_id)
            del resources[logical_id]
    bus_names = {
        logical_id: resource.get("Properties", {}).get("Name", logical_id)
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Events::EventBus"
    }
    for logical_id, resource in resources.items():
        props = resource.setdefault("Properties", {})
        kind = resource.get("Type")
        _drop_depends_on(resource, removed)
        if kind == "AWS::Lambda::Function":
            props["Code"] = {"ZipFile": STUB_HANDLER_SOURCE}  # T3
            props.pop("Layers", None)
        elif kind == "AWS::Events::Rule":
            bus = props.get("EventBusName")
            if isinstance(bus, dict) and bus.get("Ref") in bus_names:  # T4
                props["EventBusName"] = bus_names[bus["Ref"]]
        elif kind == "AWS::Events::Archive":
            if isinstance(props.get("EventPattern"), dict):  # T5
                props["EventPattern"] = json.dumps(props["EventPattern"])
            props.setdefault("ArchiveName", logical_id[:48])  # T8
        elif kind == "AWS::KMS::Key" and props.get("Tags"):  # T7
            props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]]
        elif kind == "AWS::S3::Bucket":
            adapted.buckets[logical_id] = {
                "VersioningConfiguration": props.pop("VersioningConfiguration", None),
                "EventBridge": bool(
                    (props.get("NotificationConfiguration") or {})
                    .get("EventBridgeConfiguration", {})
                    .get("EventBridgeEnabled")
                ),
            }
            notification = props.get("NotificationConfiguration")
            if notification is not None:
                notification.pop("EventBridgeConfiguration", None)
                if not notification:
                    props.pop("NotificationConfiguration")
    return adapted


def _drop_depends_on(resource: dict[str, Any], removed: set[str]) -> None:
    depends = resource.get("DependsOn")
    if isinstance(depends, str) and depends in removed:
        del resource["DependsOn"]
    elif isinstance(depends, list):
        kept = [d for d in depends if d not in removed]
        if kept:
            resource["DependsOn"] = kept
        else:
            resource.pop("DependsOn")
    if resource.get("Condition") == "CDKMetadataAvailable":
        resource.pop("Condition")


def post_deploy(
    adapted: AdaptedTemplate,
    physical: dict[str, str],
    clients: Callable[[str], Any],
    *,
    region: str,
    account: str,
    stack: str,
) -> None:
    """Apply, through the AWS APIs, what moto's CloudFormation ignored (T6, T9)."""
    s3 = clients("s3")
    for logical_id, settings in adapted.buckets.items():
        bucket = physical.get(logical_id)
        if not bucket:
            continue
        versioning = settings.get("VersioningConfiguration")
        if versioning and versioning.get("Status"):
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning["Status"]})
        if settings.get("EventBridge"):
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
    lambda_client = clients("lambda")
    resolve = _Resolver(physical, region=region, account=account, template=adapted.template)
    for props in adapted.invoke_configs:
        request: dict[str, Any] = {
            "FunctionName": resolve(props["FunctionName"]),
            "Qualifier": resolve(props.get("Qualifier", "$LATEST")),
        }
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
            if key in props:
                request[key] = int(props[key])
        destinations = props.get("DestinationConfig") or {}
        if destinations:
            request["DestinationConfig"] = {
                kind: {"Destination": resolve(value["Destination"])}
                for kind, value in destinations.items()
                if value.get("Destination")
            }
        lambda_client.put_function_event_invoke_config(**request)
    cloudwatch = clients("cloudwatch")
    for logical_id, props in adapted.alarms.items():
        alarm = {key: resolve.tree(props[key]) for key in _ALARM_FIELDS if key in props}
        alarm["AlarmName"] = resolve.tree(props.get("AlarmName", f"{stack}-{logical_id}"))
        if "Threshold" in alarm:
            alarm["Threshold"] = float(alarm["Threshold"])
        cloudwatch.put_metric_alarm(**alarm)


class _Resolver:
    """Resolves the intrinsics the post-deploy resources use (Ref, Fn::GetAtt Arn/QueueName/Name,
    Fn::Join) from the stack's physical ids."""

    def __init__(self, physical: dict[str, str], *, region: str, account: str, template: dict[str, Any]):
        self._physical, self._region, self._account = physical, region, account
        self._types = {k: v.get("Type", "") for k, v in template["Resources"].items()}

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return self._physical[value["Ref"]]
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            if attribute == "Arn":
                return self._arn(logical_id)
            if attribute in ("QueueName", "TopicName", "Name"):
                return self._arn(logical_id).rsplit(":", 1)[-1]
            raise ValueError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute} locally")
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(self(part) for part in parts)
        raise ValueError(f"cannot resolve {value!r} locally")

    def tree(self, value: Any) -> Any:
        """Resolve every intrinsic inside a property value (lists and objects included)."""
        if isinstance(value, list):
            return [self.tree(item) for item in value]
        if isinstance(value, dict):
            if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Join"):
                return self(value)
            return {key: self.tree(item) for key, item in value.items()}
        return value

    def _arn(self, logical_id: str) -> str:
        physical, kind = self._physical[logical_id], self._types.get(logical_id, "")
        prefix = f"arn:aws:{{}}:{self._region}:{self._account}"
        if physical.startswith("arn:"):
            return physical
        if kind == "AWS::SQS::Queue":
            return f"{prefix.format('sqs')}:{physical.rstrip('/').rsplit('/', 1)[-1]}"
        if kind == "AWS::Lambda::Function":
            return f"{prefix.format('lambda')}:function:{physical}"
        if kind == "AWS::SNS::Topic":
            return f"{prefix.format('sns')}:{physical}"
        raise ValueError(f"cannot build the ARN of {logical_id} ({kind}) locally")
