"""Following what happens: events on the project bus and a Lambda consumer's log lines.

Local mode is read directly: the engine appends every event a bus accepts to `events.jsonl` in the
private state dir (`eventpipe/local/event_log.py`), and the local Lambda runtime writes each function's
log to `logs/<function name>.log` there. On AWS, events come through a `TemporaryTap` (a temporary rule
on the project bus to a temporary SQS queue, both always removed), and logs through CloudWatch Logs
FilterLogEvents on the function's log group.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from eventpipe.contract import outputs
from eventpipe.contract.errors import EventpipeError
from eventpipe.contract.local_state import EVENTS_LOG, LOGS_DIR
from eventpipe.ops.context import OpsContext, find_state_file

# Every event: EventBridge patterns cannot be empty; an empty prefix matches any `source` (every event has
# one). "Content filtering in Amazon EventBridge event patterns", prefix matching.
EVERY_EVENT = {"source": [{"prefix": ""}]}
TAP_PREFIX = "eventpipe-tail-"
# SQS's minimum retention (60 s .. 14 days): a tap that could not be removed holds nothing for long.
TAP_RETENTION_SECONDS = 60
POLL_SECONDS = 0.25  # how often a followed local file is read again


@dataclass(frozen=True, slots=True)
class TailedEvent:
    """One event as `events tail` shows it; `rules` is None when unknown (AWS: the tap's own rule)."""

    received_at: datetime
    bus: str
    event: dict[str, Any]
    rules: list[str] | None = None
    replay_name: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at.isoformat().replace("+00:00", "Z"),
            "bus": self.bus,
            "rules": self.rules,
            "replay_name": self.replay_name,
            "event": self.event,
        }

    @property
    def object_key(self) -> str | None:
        detail = self.event.get("detail")
        obj = detail.get("object") if isinstance(detail, dict) else None
        key = obj.get("key") if isinstance(obj, dict) else None
        return str(key) if key is not None else None


def local_state_dir() -> Path:
    path = find_state_file()
    if path is None:
        raise EventpipeError("local mode is not running: start it with `eventpipe local start`")
    return path.parent


# ---- local files ------------------------------------------------------------------------------------
class FileFollower:
    """Complete lines appended to a file in the private state dir; survives the file being replaced
    (rotation: a new inode or a shorter file starts over from its beginning)."""

    def __init__(self, path: Path, *, from_start: bool) -> None:
        self.path = path
        self._from_start = from_start
        self._fd: int | None = None
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""

    def read_lines(self) -> list[str]:
        self._reopen_if_replaced()
        if self._fd is None:
            return []
        chunks = []
        while chunk := os.pread(self._fd, 1 << 16, self._offset):
            chunks.append(chunk)
            self._offset += len(chunk)
        data = self._partial + b"".join(chunks)
        *lines, self._partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _reopen_if_replaced(self) -> None:
        try:
            current = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return
        if self._fd is not None and current.st_ino == self._inode and current.st_size >= self._offset:
            return
        first_open = self._inode is None
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise EventpipeError(f"cannot read {self.path}: {exc.strerror}") from None
        info = os.fstat(fd)
        if info.st_uid != os.getuid():
            os.close(fd)
            raise EventpipeError(f"refusing {self.path}: it belongs to another user")
        self._fd, self._inode, self._partial = fd, info.st_ino, b""
        # The first file seen starts at its end unless history was asked for; a replacement from its start.
        self._offset = 0 if (self._from_start or not first_open) else info.st_size


def follow_file(
    follower: FileFollower, *, follow: bool, on_ready: Callable[[], None] = lambda: None
) -> Iterator[str]:
    """The follower's lines; with `follow`, keeps polling for new ones until the caller stops."""
    try:
        yield from follower.read_lines()
        on_ready()
        while follow:
            time.sleep(POLL_SECONDS)
            yield from follower.read_lines()
    finally:
        follower.close()


def local_events(
    ctx: OpsContext, *, since: datetime | None, follow: bool, on_ready: Callable[[], None] = lambda: None
) -> Iterator[TailedEvent]:
    """Events the project bus accepted in local mode (older ones first when `since` is given)."""
    bus = ctx.output(outputs.EVENT_BUS_NAME)
    follower = FileFollower(local_state_dir() / EVENTS_LOG, from_start=since is not None)
    for line in follow_file(follower, follow=follow, on_ready=on_ready):
        try:
            record = json.loads(line)
            received = datetime.fromisoformat(record["received_at"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn or foreign line: the log is a view, never a reason to stop
        if record.get("bus") != bus or (since is not None and received < since):
            continue
        yield TailedEvent(
            received_at=received,
            bus=bus,
            event=record.get("event") or {},
            rules=list(record.get("rules") or []),
            replay_name=record.get("replay_name"),
        )


def local_log_file(function_name: str) -> Path:
    return local_state_dir() / LOGS_DIR / f"{function_name}.log"


def local_log_lines(
    path: Path, *, since: datetime | None, follow: bool, on_ready: Callable[[], None] = lambda: None
) -> Iterator[str]:
    """A local function's log. `since` selects whole invocations (START .. REPORT) by the timestamps of
    their structured (Powertools JSON) lines; an invocation without any timestamped line is shown.
    Lines that arrive while following are shown as they come."""
    follower = FileFollower(path, from_start=True)
    try:
        yield from _invocations_since(follower.read_lines(), since)
        on_ready()
        while follow:
            time.sleep(POLL_SECONDS)
            yield from follower.read_lines()
    finally:
        follower.close()


def _invocations_since(lines: list[str], since: datetime | None) -> Iterator[str]:
    if since is None:
        yield from lines
        return
    block: list[str] = []
    for line in [*lines, None]:
        if line is None or (line.startswith("START RequestId:") and block):
            stamps = [stamp for stamp in map(_line_time, block) if stamp is not None]
            if not stamps or max(stamps) >= since:
                yield from block
            block = []
        if line is not None:
            block.append(line)


def _line_time(line: str) -> datetime | None:
    """The `timestamp` of a Powertools JSON log line (`2026-11-30 04:44:15,123+0000`), else None."""
    if not line.startswith("{"):
        return None
    try:
        stamp = str(json.loads(line)["timestamp"])
    except (ValueError, KeyError, TypeError):
        return None
    try:  # Powertools' default format, else its RFC 3339 option
        parsed = datetime.strptime(stamp.replace(",", "."), "%Y-%m-%d %H:%M:%S.%f%z")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError:
            return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ---- AWS ----------------------------------------------------------------------------------------------
class TemporaryTap:
    """A temporary rule on the project bus (the consumer's pattern, or every event) whose target is a
    temporary SQS queue: created on enter, ALWAYS removed on exit (also on Ctrl-C / SIGTERM, which the
    command turns into KeyboardInterrupt). Removal is best effort per resource; what could not be removed
    is named in `leftovers` so the command can say how to remove it by hand.

    Cost: SQS requests (one long poll of up to 20 s at a time, ~3 a minute while idle, plus a delete per
    event); EventBridge bills ingested events, not rules, and the tap ingests none ("Amazon EventBridge
    pricing"). IAM: events:PutRule, PutTargets,
    RemoveTargets, DeleteRule (and DescribeRule with --consumer) on `rule/<bus>/eventpipe-tail-*`;
    sqs:CreateQueue, SetQueueAttributes, GetQueueAttributes, ReceiveMessage, DeleteMessage, DeleteQueue on
    `eventpipe-tail-*` (docs/operations.md, "Follow events and logs").
    """

    def __init__(self, ctx: OpsContext, pattern: dict[str, Any], *, wait_seconds: int = 20) -> None:
        self._events = ctx.client("events")
        self._sqs = ctx.client("sqs")
        self.bus = ctx.output(outputs.EVENT_BUS_NAME)
        self.pattern = pattern
        self.name = TAP_PREFIX + secrets.token_hex(4)
        self.wait_seconds = wait_seconds
        self.queue_url: str | None = None
        self.rule_created = False
        self.target_added = False
        self.leftovers: list[str] = []

    def __enter__(self) -> TemporaryTap:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _create(self) -> None:
        # SQS-managed encryption: EventBridge can send to it without a KMS key policy (aws-facts).
        self.queue_url = self._sqs.create_queue(
            QueueName=self.name,
            Attributes={
                "SqsManagedSseEnabled": "true",
                "MessageRetentionPeriod": str(TAP_RETENTION_SECONDS),
            },
        )["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule_arn = self._events.put_rule(
            Name=self.name,
            EventBusName=self.bus,
            EventPattern=json.dumps(self.pattern),
            State="ENABLED",
            Description="temporary: eventpipe events tail (removed when the command ends)",
        )["RuleArn"]
        self.rule_created = True
        # Only this rule may send ("Using resource-based policies for Amazon EventBridge", Amazon SQS).
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        self._sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
        failed = self._events.put_targets(
            Rule=self.name, EventBusName=self.bus, Targets=[{"Id": "tail", "Arn": queue_arn}]
        ).get("FailedEntryCount", 0)
        self.target_added = True
        if failed:
            raise EventpipeError(f"could not add the temporary queue as the target of rule {self.name}")

    def receive(self) -> list[TailedEvent]:
        """The next events (waits up to `wait_seconds`); each is deleted from the queue once read."""
        assert self.queue_url is not None
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        tailed = []
        for message in answer.get("Messages", []):
            self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            try:
                event = json.loads(message["Body"])
            except ValueError:
                continue
            sent = int(message.get("Attributes", {}).get("SentTimestamp", time.time() * 1000))
            tailed.append(
                TailedEvent(
                    received_at=datetime.fromtimestamp(sent / 1000, UTC),
                    bus=self.bus,
                    event=event if isinstance(event, dict) else {"body": event},
                    replay_name=event.get("replay-name") if isinstance(event, dict) else None,
                )
            )
        return tailed

    def close(self) -> None:
        """Remove the target, the rule and the queue; each failure is remembered, none stops the others."""
        steps: list[tuple[bool, str, Callable[[], Any]]] = [
            (
                self.target_added,
                f"target 'tail' of rule {self.name}",
                lambda: self._events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=["tail"]),
            ),
            (
                self.rule_created,
                f"rule {self.name} on bus {self.bus}",
                lambda: self._events.delete_rule(Name=self.name, EventBusName=self.bus),
            ),
            (
                self.queue_url is not None,
                f"queue {self.queue_url}",
                lambda: self._sqs.delete_queue(QueueUrl=self.queue_url),
            ),
        ]
        for needed, what, remove in steps:
            if not needed:
                continue
            try:
                remove()
            except (ClientError, BotoCoreError):
                self.leftovers.append(what)
        self.target_added = self.rule_created = False
        self.queue_url = None


def rule_pattern(ctx: OpsContext, rule_name: str) -> dict[str, Any]:
    """The deployed pattern of a consumer's rule on the project bus."""
    rule = ctx.client("events").describe_rule(Name=rule_name, EventBusName=ctx.output(outputs.EVENT_BUS_NAME))
    pattern = json.loads(rule.get("EventPattern") or "null")
    if not isinstance(pattern, dict):
        raise EventpipeError(f"rule {rule_name} has no event pattern to copy")
    return pattern


def function_log_group(ctx: OpsContext, function_name: str) -> str:
    """The function's log group: its LoggingConfig.LogGroup (the stack sets an explicit one), else
    Lambda's default `/aws/lambda/<name>` (Lambda API reference, LoggingConfig)."""
    config = ctx.client("lambda").get_function_configuration(FunctionName=function_name)
    return str(config.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{function_name}")


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    stream: str
    message: str


def cloudwatch_log_lines(
    ctx: OpsContext,
    log_group: str,
    *,
    since: datetime,
    follow: bool,
    poll_seconds: float = 2.0,
    on_ready: Callable[[], None] = lambda: None,
) -> Iterator[LogLine]:
    """FilterLogEvents pages from `since`; with `follow`, polls again from the newest time seen (an event
    id seen before is not repeated: FilterLogEvents' start time is inclusive)."""
    logs = ctx.client("logs")
    start_ms = int(since.timestamp() * 1000)
    seen: set[str] = set()
    first = True
    while True:
        kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": start_ms}
        while True:
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                if event["eventId"] in seen:
                    continue
                seen.add(event["eventId"])
                start_ms = max(start_ms, int(event["timestamp"]))
                yield LogLine(
                    at=datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC),
                    stream=str(event.get("logStreamName", "")),
                    message=str(event.get("message", "")).rstrip("\n"),
                )
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        if first:
            on_ready()
            first = False
        if not follow:
            return
        time.sleep(poll_seconds)
