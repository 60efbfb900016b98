"""Every adaptation of moto 5.2.5 that local mode needs, in one place (nothing else touches moto).

Template adaptations (`adapt_template`; the deployed template is otherwise the real synthesized one):
  T1 `Parameters.BootstrapVersion` and `Rules.CheckBootstrapVersion` are removed: they read the CDK
     bootstrap's SSM parameter, which exists only in a bootstrapped account.
  T2 `AWS::CDK::Metadata`, `Custom::*` resources (moto needs Docker to run their handler Lambda) and
     `AWS::Lambda::LayerVersion` (an S3 asset) are removed, with every DependsOn/Layers reference.
  T3 Lambda `Code` pointing at the S3 asset becomes a stub `ZipFile`: moto only stores code, the
     project's LambdaRuntime runs `functions/` from the working tree instead.
  T4 Rule `EventBusName: {"Ref": Bus}` becomes the bus name (moto: "'EventBus' object has no
     attribute 'split'").
  T5 Archive `EventPattern` objects become JSON strings (moto raises TypeError on an object).
  T6 `AWS::Lambda::EventInvokeConfig` (not a moto CloudFormation type) and the bucket's
     `VersioningConfiguration` / `NotificationConfiguration.EventBridgeConfiguration` (ignored by
     moto's bucket resource) are removed from the template and applied through the AWS APIs after
     CREATE_COMPLETE (`post_deploy`).
  T7 `AWS::KMS::Key` Tags become the KMS API's TagKey/TagValue form (moto's KMS resource reads
     them unconverted and raises KeyError 'TagKey').
  T8 An Archive without ArchiveName gets its logical id (at most 48 characters): moto's generated
     `<stack>-<logical id>-<suffix>` name breaks the 48-character limit it then enforces.
  T9 `AWS::CloudWatch::Alarm` (skipped by moto's CloudFormation) is created with PutMetricAlarm
     after deploy, named `<stack>-<logical id>`, so `describe_alarms` lists the stack's alarms.
     moto stores alarms but never evaluates them: their state does not follow the metrics locally.
  Resource types moto skips with a warning (`AWS::SQS::QueuePolicy`, `AWS::S3::BucketPolicy`,
  `AWS::SNS::TopicPolicy`, `AWS::Events::EventBusPolicy`) stay in the template: resource policies
  are not enforced locally.

Runtime hooks (`install`), closing the gaps listed in ../shared/docs/aws-facts.md:
  H1 S3 -> EventBridge (gap 1, 10): moto's `_send_event_bridge_message` is replaced; events are built
     by `s3_events` (unique id, etag, reason, sequencer, URL-encoded key, version-id) and published
     to the DEFAULT bus only. The PutObject that moto emits inside CompleteMultipartUpload is dropped
     (one event per upload). Deletions are emitted from a `delete_object` wrapper, which knows whether
     a delete marker was created. ACL / tagging / restore events are not emitted.
  H2 Delivery (gaps 2, 3, 5, 6, 7): `Rule.send_to_targets` becomes a no-op and PutEvents is
     reimplemented on top of `engine.EventEngine` (enabled rules only, EventBridge matching, retries,
     DLQs, Input/InputPath/InputTransformer, whole-event bus forwarding, archives).
  H3 PutRule validates patterns with `eventpipe.patterns` (gap 9) -> InvalidEventPatternException.
  H4 Replays (gap 8): `Replay.replay_events` hands the replay to the engine's background thread;
     DescribeReplay/ListReplays report its state, EventLastReplayedTime and ReplayEndTime;
     CancelReplay moves it to CANCELLING (COMPLETED replays cannot be cancelled, like AWS).
  H5 Lambda Invoke (gap 4): `LambdaBackend.invoke` runs the function in the project's LambdaRuntime
     (Event -> invoke_async, RequestResponse -> invoke_sync, DryRun -> no-op).
  H6 moto's CloudTrail-style "CreateBucket" notifications are disabled: on AWS they need a trail.
  H7 `Ref` to an AWS::Events::EventBus / Archive yields its name (moto: the object's repr).
  H8 PutTargets enforces RetryPolicy limits (MaximumRetryAttempts 0-185, MaximumEventAgeInSeconds
     60-86400) with AWS's ValidationException text; moto stores any value.
  H9 GetBucketNotificationConfiguration reports `EventBridgeConfiguration` when it is enabled (moto
     stores it but leaves it out of the response).
  H10 DescribeArchive/ListArchives `SizeBytes` is the size of the archived events as JSON (moto reports
     `sys.getsizeof` of its Python list: tens of bytes whatever the archive holds).
  H11 Lambda API writes that can change what an invocation runs with (create/update/delete function,
     code, event invoke config) bump `lambda_config_generation()`; the LambdaRuntime reuses the
     configuration it read until the counter moves, instead of reading it on every invocation.
  H12 Request routing: moto's dispatcher, under one lock shared by every request, lists its package
     directory (a stat per service) to route each request; the list is read once instead. The same
     files are found, only once: pure speed.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventpipe.local.engine import ArchiveView, EventEngine, ReplayRun, RuleView
from eventpipe.local.s3_events import ObjectChange, aws_time, build_event

log = logging.getLogger("eventpipe.local.quirks")
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


# ---- template adaptation ----------------------------------------------------------------------
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


# ---- runtime hooks ----------------------------------------------------------------------------
class MotoTopology:
    """engine.Topology over moto's in-process EventBridge backend."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region

    def _backend(self) -> Any:
        from moto.events.models import events_backends

        return events_backends[self.account][self.region]

    def rules(self, bus: str) -> list[RuleView]:
        event_bus = self._backend().event_buses.get(bus)
        if event_bus is None:
            return []
        views = []
        for rule in list(event_bus.rules.values()):
            if rule.managed_by and rule.name.startswith("Events-Archive-"):
                continue  # moto's archive rule: archiving is done by the engine itself
            pattern = rule.event_pattern.get_pattern() if rule.event_pattern.dump() else None
            views.append(
                RuleView(
                    name=rule.name,
                    arn=rule.arn,
                    bus=bus,
                    pattern=pattern,
                    enabled=rule.state == "ENABLED",
                    targets=tuple(rule.targets),
                )
            )
        return views

    def archives(self, bus: str) -> list[ArchiveView]:
        return [
            ArchiveView(
                name=a.name,
                arn=a.arn,
                bus=a.event_bus_name,
                pattern=a.event_pattern.get_pattern() or None,
                enabled=a.state == "ENABLED",
            )
            for a in list(self._backend().archives.values())
            if a.event_bus_name == bus
        ]

    def bus_exists(self, bus: str) -> bool:
        return bus in self._backend().event_buses

    def on_archived(self, archive: str, event: dict[str, Any]) -> None:
        stored = self._backend().archives.get(archive)
        if stored is not None:
            stored.events.append(event)  # keeps DescribeArchive's EventCount right


@dataclass
class Hooks:
    """What the hooks call into; filled in by the server once engine and runtime exist."""

    engine: EventEngine | None = None
    runtime: Any = None  # eventpipe.local.lambda_runtime.LambdaRuntime
    account: str = "123456789012"
    region: str = "us-east-1"


_installed: Hooks | None = None
_install_lock = threading.Lock()
_generation_lock = threading.Lock()
_lambda_config_generation = 0  # H11; written under _generation_lock


def lambda_config_generation() -> int:
    """Moves whenever a Lambda API write may have changed what an invocation runs with (H11)."""
    return _lambda_config_generation


def install(hooks: Hooks) -> None:
    """Monkeypatch moto (idempotent per process). Must run before the moto server starts serving."""
    global _installed
    with _install_lock:
        if _installed is not None:
            _installed.engine, _installed.runtime = hooks.engine, hooks.runtime
            return
        _installed = hooks
    _patch_s3(hooks)
    _patch_events(hooks)
    _patch_lambda(hooks)
    _patch_routing()


def _replace(owner: Any, attribute: str, replacement: Any, *, add: bool = False) -> None:
    """Swap one moto function/attribute; every patch in this module goes through here."""
    if not add and not hasattr(owner, attribute):
        raise RuntimeError(f"moto changed: {owner!r} has no {attribute}; revisit eventpipe.local.quirks")
    setattr(owner, attribute, replacement)


def _patch_s3(hooks: Hooks) -> None:
    from moto.s3 import models as s3_models
    from moto.s3 import notifications

    def eventbridge_enabled(bucket: Any) -> bool:
        config = bucket.notification_configuration
        return config is not None and config.event_bridge is not None

    def emit(change: ObjectChange, bucket: Any) -> None:
        if hooks.engine is None:
            return
        event = build_event(change, account=hooks.account, region=bucket.region_name)
        try:
            hooks.engine.publish("default", event)  # S3 publishes to the default bus only
        except Exception:  # notification is asynchronous on AWS: it never fails the S3 request
            log.exception("could not publish the S3 event for %s/%s", change.bucket, change.key)

    reasons: dict[str, str] = {
        notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT: "PutObject",
        notifications.S3NotificationEvent.OBJECT_CREATED_POST_EVENT: "POST Object",
        notifications.S3NotificationEvent.OBJECT_CREATED_COPY_EVENT: "CopyObject",
        notifications.S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT: (
            "CompleteMultipartUpload"
        ),
    }

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        reason = reasons.get(event_name)
        if reason is None:
            return  # deletions come from the delete_object wrapper; ACL/tag events are not emitted
        if reason == "PutObject" and getattr(key, "multipart", None) is not None:
            return  # moto's inner PutObject of CompleteMultipartUpload
        emit(
            ObjectChange(
                bucket=bucket.name,
                key=key.name,
                reason=reason,
                size=key.size,
                etag=key.etag,
                version_id=key.version_id if bucket.is_versioned else None,
            ),
            bucket,
        )

    original_delete = s3_models.S3Backend.delete_object

    def delete_object(
        self: Any, bucket_name: str, key_name: str, version_id: str | None = None, bypass: bool = False
    ) -> tuple[bool, dict[str, Any]]:
        deleted, meta = original_delete(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        bucket = self.get_bucket(bucket_name)
        if deleted and eventbridge_enabled(bucket):
            if not bucket.is_versioned:
                change = ObjectChange(
                    bucket=bucket_name,
                    key=key_name,
                    reason="DeleteObject",
                    deletion_type="Permanently Deleted",
                )
            elif version_id is None:
                change = ObjectChange(
                    bucket=bucket_name,
                    key=key_name,
                    reason="DeleteObject",
                    version_id=str(meta.get("version-id")),
                    deletion_type="Delete Marker Created",
                )
            else:
                change = ObjectChange(
                    bucket=bucket_name,
                    key=key_name,
                    reason="DeleteObject",
                    version_id=version_id,
                    deletion_type="Permanently Deleted",
                )
            emit(change, bucket)
        return deleted, meta

    from moto.s3.responses import S3Response

    original_get_notification = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:  # H9
        response = original_get_notification(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None or not isinstance(response, tuple):
            return response
        status, headers, body = response
        text = body.decode() if isinstance(body, bytes) else str(body)
        text = re.sub(
            r"<NotificationConfiguration([^>]*?)/>",
            r"<NotificationConfiguration\1></NotificationConfiguration>",
            text,
        )
        text = text.replace(
            "</NotificationConfiguration>", "<EventBridgeConfiguration/></NotificationConfiguration>"
        )
        return status, headers, text

    _replace(S3Response, "get_bucket_notification", get_bucket_notification)
    _replace(notifications, "_send_event_bridge_message", send_event_bridge_message)
    _replace(s3_models.S3Backend, "delete_object", delete_object)


def _patch_events(hooks: Hooks) -> None:
    from moto.events import models as events_models
    from moto.events import notifications as events_notifications
    from moto.events.exceptions import (
        IllegalStatusException,
        InvalidEventPatternException,
        ResourceNotFoundException,
    )

    from eventpipe.contract.patterns import InvalidPatternError, validate_pattern

    _replace(events_notifications, "_send_safe_notification", lambda *args, **kwargs: None)  # H6
    _replace(events_models.Rule, "send_to_targets", lambda self, *args, **kwargs: None)  # H2

    original_archive_describe_short = events_models.Archive.describe_short

    def archive_describe_short(self: Any) -> dict[str, Any]:  # H10
        result: dict[str, Any] = original_archive_describe_short(self)
        result["SizeBytes"] = sum(len(json.dumps(event, default=str).encode()) for event in self.events)
        return result

    _replace(events_models.Archive, "describe_short", archive_describe_short)

    original_put_rule = events_models.EventsBackend.put_rule

    def put_rule(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:  # H3
        raw = kwargs.get("event_pattern")
        if raw:
            try:
                validate_pattern(json.loads(raw))
            except (InvalidPatternError, ValueError) as error:
                raise InvalidEventPatternException(getattr(error, "aws_reason", str(error))) from error
        return original_put_rule(self, name, *args, **kwargs)

    original_put_targets = events_models.EventsBackend.put_targets

    def put_targets(self: Any, name: str, event_bus_arn: str | None, targets: list[dict[str, Any]]) -> None:
        for position, target in enumerate(targets, start=1):  # H8
            problem = _retry_policy_problem(target.get("RetryPolicy") or {}, position)
            if problem:
                raise events_models.ValidationException(problem)
        original_put_targets(self, name, event_bus_arn, targets)

    def put_events(self: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:  # H2
        if len(entries) > 10:
            raise events_models.ValidationException(
                "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to "
                "satisfy constraint: Member must have length less than or equal to 10"
            )
        results: list[dict[str, Any]] = []
        accepted: list[tuple[str, dict[str, Any]]] = []
        for entry in entries:
            problem = _entry_problem(entry)
            if problem:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            bus = self._normalize_event_bus_arn(entry.get("EventBusName")).split("/")[-1]
            if bus not in self.event_buses:
                raise ResourceNotFoundException(f"Event bus {bus} does not exist.")
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": self.account_id,
                "time": _entry_time(entry.get("Time")),
                "region": self.region_name,
                "resources": list(entry.get("Resources") or []),
                "detail": json.loads(entry["Detail"]),
            }
            results.append({"EventId": event["id"]})
            accepted.append((bus, event))
        if hooks.engine is not None:
            for bus, event in accepted:
                hooks.engine.publish(bus, event)
        return results

    def replay_events(self: Any, archive: Any) -> None:  # H4
        if hooks.engine is None:
            raise IllegalStatusException("The local event engine is not running.")
        filter_arns = (self.destination or {}).get("FilterArns")
        self._eventpipe_run = ReplayRun(
            name=self.name,
            archive=archive.name,
            bus=self.destination["Arn"].split("/")[-1],
            start=_epoch(self.event_start_time),
            end=_epoch(self.event_end_time),
            filter_arns=frozenset(filter_arns) if filter_arns else None,
        )
        hooks.engine.start_replay(self._eventpipe_run)

    original_describe_short = events_models.Replay.describe_short

    def describe_short(self: Any) -> dict[str, Any]:
        run: ReplayRun | None = getattr(self, "_eventpipe_run", None)
        result: dict[str, Any] = original_describe_short(self)
        if run is not None:
            result["State"] = run.state
            result["ReplayEndTime"] = run.replay_end
            if run.state_reason:
                result["StateReason"] = run.state_reason
            if run.last_replayed is not None:
                result["EventLastReplayedTime"] = run.last_replayed
        return {k: v for k, v in result.items() if v is not None}

    def list_replays(
        self: Any, name_prefix: str | None, source_arn: str | None, state: str | None
    ) -> list[dict[str, Any]]:
        if [name_prefix, source_arn, state].count(None) < 2:
            raise events_models.ValidationException(
                "At most one filter is allowed for ListReplays. "
                "Use either : State, EventSourceArn, or NamePrefix."
            )
        found = [replay.describe_short() for replay in self.replays.values()]
        return [
            r
            for r in found
            if (name_prefix is None or r["ReplayName"].startswith(name_prefix))
            and (source_arn is None or r["EventSourceArn"] == source_arn)
            and (state is None or r["State"] == state)
        ]

    def cancel_replay(self: Any, name: str) -> dict[str, str]:
        replay = self._get_replay(name)
        run: ReplayRun | None = getattr(replay, "_eventpipe_run", None)
        if run is None or not run.request_cancel():
            raise IllegalStatusException(f"Replay {name} is not in a valid state for this operation.")
        return {"ReplayArn": replay.arn, "State": "CANCELLING"}

    # H7: `Ref` to a bus or an archive returns its name on AWS; moto returns the Python object.
    _replace(events_models.EventBus, "physical_resource_id", property(lambda self: self.name), add=True)
    _replace(events_models.Archive, "physical_resource_id", property(lambda self: self.name), add=True)
    _replace(events_models.EventsBackend, "put_rule", put_rule)
    _replace(events_models.EventsBackend, "put_targets", put_targets)
    _replace(events_models.EventsBackend, "put_events", put_events)
    _replace(events_models.EventsBackend, "list_replays", list_replays)
    _replace(events_models.EventsBackend, "cancel_replay", cancel_replay)
    _replace(events_models.Replay, "replay_events", replay_events)
    _replace(events_models.Replay, "describe_short", describe_short)


# EventBridge's limits for a target's RetryPolicy.
_RETRY_LIMITS = {"MaximumRetryAttempts": (0, 185), "MaximumEventAgeInSeconds": (60, 86_400)}


def _retry_policy_problem(policy: dict[str, Any], position: int) -> str | None:
    for field_name, (low, high) in _RETRY_LIMITS.items():
        if field_name not in policy:
            continue
        value = int(policy[field_name])
        member = f"targets.{position}.member.retryPolicy.{field_name[0].lower()}{field_name[1:]}"
        if value < low:
            bound = f"greater than or equal to {low}"
        elif value > high:
            bound = f"less than or equal to {high}"
        else:
            continue
        return (
            f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
    return None


def _entry_problem(entry: dict[str, Any]) -> tuple[str, str] | None:
    for field_name in ("Source", "DetailType", "Detail"):
        if not entry.get(field_name):
            return (
                "InvalidArgument",
                f"Parameter {field_name} is not valid. Reason: {field_name} is a required argument.",
            )
    try:
        detail = json.loads(entry["Detail"])
    except ValueError:
        return ("MalformedDetail", "Detail is malformed.")
    if not isinstance(detail, dict):
        return ("MalformedDetail", "Detail is malformed.")
    return None


def _entry_time(value: Any) -> str:
    if value in (None, ""):
        return aws_time()
    return aws_time(datetime.fromtimestamp(_epoch(value), UTC))


def _epoch(value: Any) -> float:
    """moto hands timestamps over as they came in the JSON request: epoch numbers or ISO strings."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _patch_lambda(hooks: Hooks) -> None:
    from moto.awslambda import models as lambda_models
    from moto.awslambda.exceptions import UnknownFunctionException

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes | None:  # H5
        runtime = hooks.runtime
        if runtime is None:
            raise UnknownFunctionException(function_name)
        from eventpipe.local.lambda_runtime import FunctionNotFoundError

        invocation_type = headers.get("X-Amz-Invocation-Type", "RequestResponse")
        payload = json.loads(body) if body else {}
        try:
            if invocation_type == "DryRun":
                self.get_function(function_name, qualifier)
                return b""
            if invocation_type == "Event":
                request_id = runtime.invoke_async(function_name, payload)
                response_headers["x-amzn-RequestId"] = request_id
                return b""
            result = runtime.invoke_sync(function_name, payload)
        except FunctionNotFoundError:
            arn = f"arn:aws:lambda:{hooks.region}:{hooks.account}:function:{function_name}"
            raise UnknownFunctionException(arn) from None
        response_headers["x-amzn-RequestId"] = result.request_id
        response_headers["X-Amz-Executed-Version"] = result.executed_version
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        response_headers["Content-Length"] = str(len(result.payload))
        return bytes(result.payload)

    _replace(lambda_models.LambdaBackend, "invoke", invoke)

    for name in LAMBDA_CONFIGURATION_WRITES:  # H11
        _replace(lambda_models.LambdaBackend, name, _bumping(getattr(lambda_models.LambdaBackend, name)))


# LambdaBackend methods behind the API calls that change a function's configuration or existence.
LAMBDA_CONFIGURATION_WRITES = (
    "create_function",
    "delete_function",
    "update_function_code",
    "update_function_configuration",
    "put_function_event_invoke_config",
    "update_function_event_invoke_config",
    "delete_function_event_invoke_config",
)


def _bumping(write: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _lambda_config_generation
        try:
            return write(self, *args, **kwargs)
        finally:  # after the write, also a failed one (it may have changed something first)
            with _generation_lock:  # two concurrent writes must move the counter twice
                _lambda_config_generation += 1

    return wrapper


def _patch_routing() -> None:  # H12
    import moto.backends as moto_backends

    modules = frozenset(moto_backends.list_of_moto_modules())

    def list_of_moto_modules() -> frozenset[str]:
        return modules

    _replace(moto_backends, "list_of_moto_modules", list_of_moto_modules)
