"""moto EventBridge patches: delivery by the local engine (H2), pattern validation (H3), no CloudTrail
notifications (H6), RetryPolicy limits (H8) and archive sizes (H10).

See docs/local-mode.md for what each one reproduces and the test that shows it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from eventpipe.contract.consumers import RETRY_POLICY_LIMITS
from eventpipe.local.moto_patches.hooks import Hooks
from eventpipe.local.moto_patches.patching import replace
from eventpipe.local.s3_events import aws_time


def install(hooks: Hooks) -> None:
    from moto.events import models as events_models
    from moto.events import notifications as events_notifications
    from moto.events.exceptions import InvalidEventPatternException, ResourceNotFoundException

    from eventpipe.contract.patterns import InvalidPatternError, validate_pattern

    replace(events_notifications, "_send_safe_notification", lambda *args, **kwargs: None)  # H6
    replace(events_models.Rule, "send_to_targets", lambda self, *args, **kwargs: None)  # H2

    original_archive_describe_short = events_models.Archive.describe_short

    def archive_describe_short(self: Any) -> dict[str, Any]:  # H10
        result: dict[str, Any] = original_archive_describe_short(self)
        result["SizeBytes"] = sum(len(json.dumps(event, default=str).encode()) for event in self.events)
        return result

    replace(events_models.Archive, "describe_short", archive_describe_short)

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

    replace(events_models.EventsBackend, "put_rule", put_rule)
    replace(events_models.EventsBackend, "put_targets", put_targets)
    replace(events_models.EventsBackend, "put_events", put_events)


def _retry_policy_problem(policy: dict[str, Any], position: int) -> str | None:
    for field_name, (low, high) in RETRY_POLICY_LIMITS.items():
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
    return aws_time(datetime.fromtimestamp(epoch(value), UTC))


def epoch(value: Any) -> float:
    """moto hands timestamps over as they came in the JSON request: epoch numbers or ISO strings."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
