"""The local EventBridge delivery engine: rules, targets, retries, dead-letter queues, archives.

moto stores buses, rules, targets and archives faithfully but its delivery does not behave like
EventBridge (see docs/local-mode.md). This engine replaces the delivery: it reads the stored topology
through a `Topology` (moto-specific code stays in `moto_patches`), matches with the contract's
pattern engine, schedules on local mode's one clock (`clock.py`) and delivers through the emulator's
own AWS APIs (`senders.py`), so a target sees exactly what a client would. Delivery is asynchronous,
like EventBridge: `publish` returns once the event is accepted.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventpipe.local.clock import DEFAULT_TIME_SCALE, LocalClock, Scheduler
from eventpipe.local.event_log import EventLog
from eventpipe.local.target_input import InputError, render_input

log = logging.getLogger("eventpipe.local.engine")

# EventBridge's defaults when a target has no RetryPolicy.
DEFAULT_MAX_RETRY_ATTEMPTS = 185
DEFAULT_MAX_EVENT_AGE_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class RuleView:
    name: str
    arn: str
    bus: str
    pattern: dict[str, Any] | None
    enabled: bool
    targets: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ArchiveView:
    name: str
    arn: str
    bus: str
    pattern: dict[str, Any] | None
    enabled: bool


class Topology(Protocol):
    """Read access to the stored EventBridge configuration (moto's backend in the emulator)."""

    def rules(self, bus: str) -> list[RuleView]: ...

    def archives(self, bus: str) -> list[ArchiveView]: ...

    def bus_exists(self, bus: str) -> bool: ...

    def on_archived(self, archive: str, event: dict[str, Any]) -> None: ...


class DeliveryError(Exception):
    """A target could not accept the event; `code` is what lands in the DLQ's ERROR_CODE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    received_at: float  # epoch seconds when the bus received it (what replay windows select on)
    event: dict[str, Any]


@dataclass(slots=True)
class _Delivery:
    event: dict[str, Any]
    rule: RuleView
    target: dict[str, Any]
    first_attempt: float  # monotonic
    retries: int = 0


@dataclass
class ReplayRun:
    """One StartReplay, progressed by a background thread like EventBridge's asynchronous replays."""

    name: str
    archive: str
    bus: str
    start: float
    end: float
    filter_arns: frozenset[str] | None
    state: str = "STARTING"
    state_reason: str | None = None
    replay_end: float | None = None
    last_replayed: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def request_cancel(self) -> bool:
        """Move to CANCELLING; False if the replay already finished (AWS: IllegalStatusException)."""
        with self._lock:
            if self.state not in ("STARTING", "RUNNING"):
                return False
            self.state = "CANCELLING"
            return True

    def advance(self, state: str) -> bool:
        """Move to `state` unless a cancel was requested (then end CANCELLED and return False)."""
        with self._lock:
            if self.state == "CANCELLING":
                self.state, self.replay_end = "CANCELLED", time.time()
                return False
            self.state = state
            if state in ("COMPLETED", "FAILED"):
                self.replay_end = time.time()
            return True


class Senders(Protocol):
    """The emulator's AWS APIs the engine delivers through."""

    def sqs_send(
        self,
        queue_arn: str,
        body: str,
        *,
        attributes: dict[str, str] | None = None,
        group_id: str | None = None,
    ) -> None: ...

    def sns_publish(self, topic_arn: str, body: str) -> None: ...

    def sfn_start(self, state_machine_arn: str, body: str) -> None: ...

    def lambda_invoke_async(self, function_arn: str, payload: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Timing:
    """The engine's delays on the local clock (`clock.py`): one AWS second of backoff or event age
    lasts `scale` real seconds."""

    scale: float = DEFAULT_TIME_SCALE
    replay_start_delay: float = 1.0  # real seconds a replay stays STARTING (AWS: about a minute)
    replay_event_gap: float = 0.01

    @property
    def clock(self) -> LocalClock:
        return LocalClock(self.scale)

    def backoff(self, retries: int) -> float:
        # Exponential backoff with jitter (half to full delay), 1 s .. 180 s in AWS terms.
        aws_delay = min(180.0, 2.0**retries)
        jittered = random.uniform(aws_delay / 2, aws_delay)  # noqa: S311 - jitter, not crypto
        return self.clock.local_seconds(jittered)


class EventEngine:
    """Matches published events against the stored rules and delivers them on worker threads,
    retrying per target RetryPolicy and dead-lettering what cannot be delivered."""

    def __init__(
        self,
        *,
        topology: Topology,
        senders: Senders,
        timing: Timing | None = None,
        matcher: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None,
        workers: int = 2,
        event_log: EventLog | None = None,
    ) -> None:
        self._topology = topology
        self._event_log = event_log
        self._senders = senders
        self._timing = timing or Timing()
        self._matches = matcher or _default_matcher()
        self._stats_lock = threading.Lock()
        self._replays: dict[str, ReplayRun] = {}
        self._archive_log: dict[str, list[ArchivedEvent]] = {}
        self._archive_lock = threading.Lock()
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "published",
                "matched",
                "delivered",
                "failed_invocations",
                "sent_to_dlq",
                "failed_to_send_to_dlq",
                "dropped",
                "archived",
            ),
            0,
        )
        self._scheduler = Scheduler(name="eventpipe-delivery", workers=workers)

    # ---- intake -------------------------------------------------------------------------------
    def publish(self, bus: str, event: dict[str, Any], *, replay: ReplayRun | None = None) -> int:
        """Accept `event` on `bus`: archive it, then queue one delivery per matching rule target.

        Returns the number of deliveries queued."""
        self._count("published")
        if replay is None:
            self._archive(bus, event)
        queued = 0
        matched: list[str] = []
        for rule in self._topology.rules(bus):
            if not rule.enabled or rule.pattern is None:
                continue
            if replay is not None and replay.filter_arns is not None and rule.arn not in replay.filter_arns:
                continue
            if not self._safe_match(rule.pattern, event, rule.arn):
                continue
            self._count("matched")
            matched.append(rule.name)
            for target in rule.targets:
                self._schedule(
                    _Delivery(event=event, rule=rule, target=target, first_attempt=time.monotonic()),
                    delay=0.0,
                )
                queued += 1
        if self._event_log is not None:
            self._event_log.append(bus, event, matched, replay_name=replay.name if replay else None)
        return queued

    def _archive(self, bus: str, event: dict[str, Any]) -> None:
        for archive in self._topology.archives(bus):
            if not archive.enabled:
                continue
            if archive.pattern and not self._safe_match(archive.pattern, event, archive.arn):
                continue
            with self._archive_lock:
                self._archive_log.setdefault(archive.name, []).append(ArchivedEvent(time.time(), event))
            self._topology.on_archived(archive.name, event)
            self._count("archived")

    def archived(self, archive: str) -> list[ArchivedEvent]:
        with self._archive_lock:
            return list(self._archive_log.get(archive, ()))

    def _safe_match(self, pattern: dict[str, Any], event: dict[str, Any], owner: str) -> bool:
        try:
            return self._matches(pattern, event)
        except Exception:  # a broken stored pattern must not stop delivery to other rules
            log.exception("pattern of %s could not be evaluated", owner)
            return False

    # ---- delivery -----------------------------------------------------------------------------
    def _schedule(self, delivery: _Delivery, *, delay: float) -> None:
        self._scheduler.call_later(delay, lambda: self._attempt(delivery))

    def _attempt(self, delivery: _Delivery) -> None:
        try:
            self._deliver(delivery)
        except DeliveryError as error:
            self._count("failed_invocations")
            self._after_failure(delivery, error)
        else:
            self._count("delivered")

    def _deliver(self, delivery: _Delivery) -> None:
        target, rule = delivery.target, delivery.rule
        arn = str(target["Arn"])
        parts = arn.split(":", 5)
        if len(parts) < 6:
            raise DeliveryError("InvalidTarget", f"Target ARN {arn} is not valid.")
        service, resource = parts[2], parts[5]
        if service == "events" and resource.startswith("event-bus/"):
            # Bus-to-bus: the whole event travels unchanged (id, time, resources, detail).
            bus = resource.split("/", 1)[1]
            if not self._topology.bus_exists(bus):
                raise DeliveryError("ResourceNotFoundException", f"Event bus {bus} does not exist.")
            self.publish(bus, delivery.event)
            return
        try:
            body = render_input(target, delivery.event, rule_name=rule.name, rule_arn=rule.arn)
        except InputError as error:
            raise DeliveryError("InvalidInput", str(error)) from error
        if service == "sqs":
            group = (target.get("SqsParameters") or {}).get("MessageGroupId")
            self._senders.sqs_send(arn, body, group_id=group)
        elif service == "lambda":
            self._senders.lambda_invoke_async(arn, _json_or_text(body))
        elif service == "sns":
            self._senders.sns_publish(arn, body)
        elif service == "states":
            self._senders.sfn_start(arn, body)
        else:
            raise DeliveryError("UnsupportedTarget", f"Target type {service} is not supported locally.")

    def _after_failure(self, delivery: _Delivery, error: DeliveryError) -> None:
        policy = delivery.target.get("RetryPolicy") or {}
        max_retries = int(policy.get("MaximumRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS))
        max_age = float(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS))
        aws_age = self._timing.clock.aws_seconds(time.monotonic() - delivery.first_attempt)
        exhausted = None
        if delivery.retries >= max_retries:
            exhausted = "MaximumRetryAttempts"
        elif aws_age >= max_age:
            exhausted = "MaximumEventAgeInSeconds"
        if exhausted is None:
            delay = self._timing.backoff(delivery.retries)
            delivery.retries += 1
            log.info(
                "retrying %s -> %s in %.2fs (%s)",
                delivery.rule.name,
                delivery.target["Arn"],
                delay,
                error.code,
            )
            self._schedule(delivery, delay=delay)
            return
        self._dead_letter(delivery, error, exhausted)

    def _dead_letter(self, delivery: _Delivery, error: DeliveryError, exhausted: str) -> None:
        dlq = (delivery.target.get("DeadLetterConfig") or {}).get("Arn")
        if not dlq:
            self._count("dropped")
            log.warning(
                "dropped event %s for %s: %s", delivery.event.get("id"), delivery.target["Arn"], error.message
            )
            return
        attributes = {
            "ERROR_CODE": error.code,
            "ERROR_MESSAGE": error.message,
            "RULE_ARN": delivery.rule.arn,
            "TARGET_ARN": str(delivery.target["Arn"]),
            "RETRY_ATTEMPTS": str(delivery.retries),
            "EXHAUSTED_RETRY_CONDITION": exhausted,
        }
        try:
            self._senders.sqs_send(str(dlq), json.dumps(delivery.event), attributes=attributes)
        except DeliveryError:
            self._count("failed_to_send_to_dlq")
            log.exception("could not write to the DLQ %s", dlq)
        else:
            self._count("sent_to_dlq")

    # ---- replays ------------------------------------------------------------------------------
    def start_replay(self, run: ReplayRun) -> None:
        self._replays[run.name] = run
        threading.Thread(target=self._replay, args=(run,), name=f"replay-{run.name}", daemon=True).start()

    def replay(self, name: str) -> ReplayRun | None:
        return self._replays.get(name)

    def _replay(self, run: ReplayRun) -> None:
        time.sleep(self._timing.replay_start_delay)
        if not run.advance("RUNNING"):
            return
        try:
            selected = [a for a in self.archived(run.archive) if run.start <= a.received_at <= run.end]
            for archived in selected:
                if run.state == "CANCELLING":
                    break
                self.publish(run.bus, {**archived.event, "replay-name": run.name}, replay=run)
                run.last_replayed = archived.received_at
                time.sleep(self._timing.replay_event_gap)
        except Exception as error:
            log.exception("replay %s failed", run.name)
            run.state_reason = str(error)
            run.advance("FAILED")
            return
        run.advance("COMPLETED")

    # ---- settling -----------------------------------------------------------------------------
    def busy(self, horizon: float = 2.0) -> bool:
        """True while a delivery runs, one is due within `horizon` seconds, or a replay is active."""
        if self._scheduler.busy(horizon):
            return True
        return any(run.state in ("STARTING", "RUNNING", "CANCELLING") for run in self._replays.values())

    def pending(self) -> int:
        return self._scheduler.pending()

    def shutdown(self) -> None:
        self._scheduler.shutdown()

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def _default_matcher() -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    from eventpipe.contract.patterns import matches

    return matches
