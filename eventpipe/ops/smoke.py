"""`eventpipe smoke`: after a deploy, one canary object proves the pipeline end to end, then leaves.

The canary is a one-record JSON object under the reserved prefix `SMOKE_PREFIX`: no dataset prefix
matches it (so it lands in the default dataset, keyed by object key and position) and it ends in
`.json` (so the ingest rule routes it). What is checked, hop by hop:

- upload: PutObject of the canary into the ingest bucket.
- ingest: the canary's record appears in the table (Query on the `by-owner` index, then a consistent
  GetItem), with exactly the uploaded content.
- table: the object's state item says `present` for the uploaded version.
- every other consumer whose deployed rule matches the canary's Object Created event, by target kind:
  SQS (e.g. audit) the event arrives in its queue (found, then deleted: the canary's messages are
  ours); Step Functions an execution whose input names the canary; Lambda (other than ingest),
  SNS and event-bus targets cannot be observed from outside without side effects: reported as
  "not observable" and covered only by their DLQ / failure-queue check.
- bus/forwarder: named when nothing saw the event at all, or the forwarder's DLQ holds it.
- queues: every rule DLQ and Lambda failure queue is empty (dead letters of earlier canaries excepted:
  they are removed).
- cleanup: the canary is deleted (a delete marker: the Object Deleted event runs delete-sync), then
  its records must be gone and its state tombstoned (`deleted`); the canary's messages in consumer
  queues and dead-letter queues are deleted. The tombstone and the noncurrent version stay: the
  tombstone keeps a later replay of the archived Object Created event from bringing the records back,
  and the bucket's lifecycle rule expires noncurrent versions.

A failed hop ends the run with `SmokeFailure`, whose message starts with the hop's name; cleanup runs
in any case (its own failure is reported only when every other hop passed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from eventpipe.contract import outputs
from eventpipe.contract.patterns import matches
from eventpipe.ops import inventory
from eventpipe.ops.context import FORWARDER, ConsumerResources, OpsContext, TargetKind
from eventpipe.ops.deadletters import DLQ, DeadLetter, QueueReader, queue_depth
from eventpipe.ops.smoke_report import (  # noqa: F401 (re-exported: the smoke API)
    DELETE_SYNC,
    FAILED,
    INGEST,
    NOT_OBSERVABLE,
    NOT_REACHED,
    OBJECT_CREATED,
    OBJECT_DELETED,
    OK,
    OWNER_INDEX,
    SKIPPED,
    SMOKE_PREFIX,
    Check,
    SmokeFailure,
    SmokeReport,
    canary_event,
    canary_key,
    is_canary,
    render_rows,
)
from functions.core.domain.table_layout import STATE_PREFIX, STATE_SORT

# Why a consumer of that kind cannot be observed without side effects (subscribing, invoking...).
_UNOBSERVABLE = {
    TargetKind.LAMBDA: "a Lambda leaves no trace to read back; its DLQ and failure queue are checked",
    TargetKind.SNS: "reading a topic needs a subscription; its DLQ is checked",
    TargetKind.BUS: "the target bus may be in another account; its DLQ is checked",
}


@dataclass
class _Watch:
    """One consumer expected to see the canary's event, and how to tell that it did."""

    name: str  # the consumer's, or the step's ("cleanup")
    check: Check
    probe: Callable[[], bool] | None  # None: nothing to observe
    done: bool = False


class Smoke:
    """One smoke run against `ctx` (a deployed stack or local mode)."""

    def __init__(
        self,
        ctx: OpsContext,
        *,
        timeout_seconds: float = 120.0,
        poll_seconds: float | None = None,
        run_id: str | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.timeout = timeout_seconds
        self.poll = poll_seconds if poll_seconds is not None else (0.1 if ctx.local else 1.0)
        self.bucket = ctx.output(outputs.BUCKET_NAME)
        self.table = ctx.output(outputs.TABLE_NAME)
        self.key = canary_key(run_id)
        self.body = {
            "canary": self.key.removeprefix(SMOKE_PREFIX).removesuffix(".json"),
            "by": "eventpipe smoke",
        }
        self.report = SmokeReport(stack=ctx.stack, local=ctx.local, bucket=self.bucket, key=self.key)
        self.version_id: str | None = None
        self._progress = on_progress or (lambda _: None)
        self._readers: dict[str, QueueReader] = {}
        self._canary_letters: list[tuple[QueueReader, DeadLetter]] = []

    # --- the run ------------------------------------------------------------------------------------

    def run(self) -> SmokeReport:
        uploaded = False
        try:
            self._upload()
            uploaded = True
            self._await_delivery()
            self._check_queues()
        except SmokeFailure as failure:
            self.report.failure = failure
        finally:
            try:
                if uploaded:
                    self._cleanup()
            except SmokeFailure as failure:
                if self.report.failure is None:
                    self.report.failure = failure
            finally:
                self._release_readers()  # what was only looked at becomes visible again
        return self.report

    def _add(self, check: Check) -> Check:
        self.report.checks.append(check)
        return check

    # --- upload ---------------------------------------------------------------------------------------

    def _upload(self) -> None:
        self._progress(f"uploading the canary s3://{self.bucket}/{self.key}")
        started = time.monotonic()
        try:
            response = self.ctx.client("s3").put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(self.body).encode(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as exc:
            self._add(Check("upload", f"PutObject s3://{self.bucket}/{self.key}", FAILED, _reason(exc)))
            raise SmokeFailure("upload", f"PutObject of the canary failed: {_reason(exc)}") from exc
        self.version_id = response.get("VersionId")
        self._add(
            Check(
                "upload",
                f"PutObject s3://{self.bucket}/{self.key}",
                detail=f"version {self.version_id or '(unversioned)'}",
                seconds=time.monotonic() - started,
            )
        )

    # --- delivery -------------------------------------------------------------------------------------

    def _watches(self, detail_type: str) -> list[_Watch]:
        event = canary_event(self.bucket, self.key, detail_type)
        watches = []
        for consumer in self.ctx.consumers():
            if not consumer.deployed:
                continue
            state, pattern = inventory.rule_details(self.ctx, consumer)
            what = f"{detail_type} event reaches {consumer.name}"
            if pattern is None or not matches(pattern, event):
                continue
            check = Check(consumer.name, what)
            if state != "ENABLED":
                check.status, check.detail = SKIPPED, f"rule is {state}"
                watches.append(_Watch(consumer.name, check, None, done=True))
                continue
            probe = self._probe_for(consumer, detail_type, check)
            if probe is not None:
                check.status = NOT_REACHED  # until the probe sees it
            watches.append(_Watch(consumer.name, check, probe))
        return watches

    def _probe_for(
        self, consumer: ConsumerResources, detail_type: str, check: Check
    ) -> Callable[[], bool] | None:
        kind = consumer.kind
        queue_url = self.ctx.outputs.get(outputs.consumer_output(consumer.name, outputs.QUEUE_URL))
        if consumer.name == INGEST and detail_type == OBJECT_CREATED:
            check.what = f"record of the canary in {self.table}"
            return self._record_stored
        if consumer.name == DELETE_SYNC and detail_type == OBJECT_DELETED:
            check.what = f"records removed and state tombstoned in {self.table}"
            return self._records_removed
        if kind is TargetKind.SQS and queue_url:
            check.what = f"{detail_type} event in queue {_last(queue_url)}"
            return lambda: self._event_in_queue(consumer.name, queue_url, detail_type)
        if kind is TargetKind.SFN and consumer.target_arn:
            check.what = f"execution of {_last(consumer.target_arn)} with the canary"
            arn = consumer.target_arn
            return lambda: self._execution_started(arn)
        check.status = NOT_OBSERVABLE
        check.detail = _UNOBSERVABLE.get(kind, "nothing to read back") if kind else "no target"
        return None

    def _await_delivery(self) -> None:
        watches = self._watches(OBJECT_CREATED)
        for watch in watches:
            self._add(watch.check)
        if not any(w.name == INGEST for w in watches):
            raise SmokeFailure(
                INGEST,
                f"no enabled ingest rule matches the canary's Object Created event in {self.ctx.stack}",
            )
        self._progress("waiting for the canary in every consumer that should see it")
        self._wait(watches, after_round=self._fail_fast_on_dead_letters)
        missing = [w for w in watches if not w.done]
        if missing:
            raise self._diagnose(watches, missing)
        self._check_state_present()

    def _wait(self, watches: list[_Watch], *, after_round: Callable[[], None] | None = None) -> None:
        started = time.monotonic()
        deadline = started + self.timeout
        pending = [w for w in watches if not w.done and w.probe is not None]
        for watch in watches:
            if watch.probe is None:
                watch.done = True
        while pending:
            for watch in list(pending):
                assert watch.probe is not None
                if self._probe(watch):
                    watch.done = True
                    watch.check.status = OK
                    watch.check.seconds = time.monotonic() - started
                    pending.remove(watch)
            if not pending:
                return
            if after_round:
                after_round()
            if time.monotonic() > deadline:
                for watch in pending:
                    watch.check.status = FAILED
                    watch.check.seconds = time.monotonic() - started
                return
            time.sleep(self.poll)

    def _probe(self, watch: _Watch) -> bool:
        """Run a watch's probe; an AWS error while looking is that hop's failure (the table's for the
        checks that read the table)."""
        assert watch.probe is not None
        try:
            return watch.probe()
        except (ClientError, BotoCoreError) as exc:
            watch.check.status, watch.check.detail = FAILED, _reason(exc)
            hop = "table" if watch.name in (INGEST, DELETE_SYNC, "cleanup") else watch.name
            raise SmokeFailure(hop, f"{watch.check.what}: {_reason(exc)}") from exc

    def _fail_fast_on_dead_letters(self) -> None:
        """A dead letter of this canary ends the wait at once: the hop that failed is known."""
        for consumer in [*self.ctx.consumers(), self.ctx.forwarder()]:
            for role, url in consumer.queues.items():
                letter = self._canary_dead_letter(url, role)
                if letter is not None:
                    raise self._dead_letter_failure(consumer, role, letter)

    def _dead_letter_failure(
        self, consumer: ConsumerResources, role: str, letter: DeadLetter
    ) -> SmokeFailure:
        hop = "bus/forwarder" if consumer.name == FORWARDER else consumer.name
        why = letter.error_message or letter.error_code or "no reason given"
        where = "failure queue" if role == "failures" else "dead-letter queue"
        doing = (
            "the function failed on the canary"
            if role == "failures"
            else "EventBridge could not deliver the canary"
        )
        for check in self.report.checks:
            if check.hop == hop and check.status == NOT_REACHED:
                check.status = FAILED
        self._add(Check(hop, f"canary in the {where}", FAILED, why))
        return SmokeFailure(hop, f"{doing} ({where} of {consumer.name}: {_one_line(why)})")

    def _diagnose(self, watches: list[_Watch], missing: list[_Watch]) -> SmokeFailure:
        waited = _duration(self.timeout)
        for consumer in [*self.ctx.consumers(), self.ctx.forwarder()]:
            for role, url in consumer.queues.items():
                letter = self._canary_dead_letter(url, role)
                if letter is not None:
                    return self._dead_letter_failure(consumer, role, letter)
        seen = [w for w in watches if w.done and w.probe is not None]
        if any(w.name == INGEST for w in missing):
            if not seen:
                return SmokeFailure(
                    "bus/forwarder",
                    f"no consumer received the canary's event within {waited} (did the default-bus "
                    "forwarding rule deliver it to the project bus? see `eventpipe dlq list`)",
                )
            witness = ", ".join(w.name for w in seen)
            return SmokeFailure(
                INGEST,
                f"no record of the canary in {self.table} within {waited}, although the event reached the "
                f"project bus ({witness} received it)",
            )
        first = missing[0]
        return SmokeFailure(first.name, f"{first.check.what}: not seen within {waited}")

    def _check_state_present(self) -> None:
        state = self._state()
        status = state.get("status")
        version = state.get("version_id")
        check = self._add(Check("table", "object state of the canary", detail=f"status {status}"))
        if status != "present" or (self.version_id and version != self.version_id):
            check.status = FAILED
            raise SmokeFailure(
                "table",
                f"the canary's state item says status={status!r} version={version!r}, expected present "
                f"version {self.version_id!r}",
            )

    # --- queues -------------------------------------------------------------------------------------

    def _check_queues(self) -> None:
        self._progress("checking every dead-letter and failure queue")
        problems = []
        for row in inventory.dead_letter_queues(self.ctx, with_age=False):
            name = f"{row.consumer}/{row.role}"
            if not row.depth.total:
                continue
            leftovers = self._only_canary_letters(row.url, row.role, row.depth.visible, row.depth.in_flight)
            if leftovers:
                self._add(
                    Check("queues", name, OK, f"{leftovers} dead letter(s) of earlier canaries, removed")
                )
                continue
            problems.append(f"{name} holds {row.depth.total} message(s)")
        check = self._add(Check("queues", "every DLQ and failure queue empty"))
        if problems:
            check.status, check.detail = FAILED, "; ".join(problems)
            raise SmokeFailure(
                "queues", "; ".join(problems) + " (see `eventpipe dlq peek`; redrive or purge, then re-run)"
            )

    def _only_canary_letters(self, url: str, role: str, visible: int, in_flight: int) -> int:
        """How many canary dead letters the queue holds when it holds nothing else (else 0)."""
        if in_flight or visible > 50:
            return 0
        reader = self._reader(url, role)
        letters = list(reader.letters(limit=visible))
        canaries = [letter for letter in letters if is_canary(letter.object_key)]
        if len(letters) != visible or len(canaries) != len(letters):
            return 0
        self._canary_letters.extend((reader, letter) for letter in canaries)
        return len(canaries)

    # --- cleanup ------------------------------------------------------------------------------------

    def _cleanup(self) -> None:
        self._progress("removing the canary")
        s3 = self.ctx.client("s3")
        try:
            s3.delete_object(Bucket=self.bucket, Key=self.key)
        except (ClientError, BotoCoreError) as exc:
            self._add(Check("cleanup", "DeleteObject of the canary", FAILED, _reason(exc)))
            raise SmokeFailure("cleanup", f"DeleteObject of the canary failed: {_reason(exc)}") from exc
        watches = self._watches(OBJECT_DELETED)
        if not any(w.name == DELETE_SYNC for w in watches):  # the records must go whoever removes them
            what = f"records removed and state tombstoned in {self.table}"
            watches.append(_Watch("cleanup", Check("cleanup", what, NOT_REACHED), self._records_removed))
        for watch in watches:
            self._add(watch.check)
        try:
            self._wait(watches)
        finally:
            self._delete_canary_letters()
        missing = [w for w in watches if not w.done or w.check.status == FAILED]
        if missing:
            first = missing[0]
            hop = first.name if first.name == DELETE_SYNC else "cleanup"
            raise SmokeFailure(hop, f"{first.check.what}: not done within {_duration(self.timeout)}")

    def _delete_canary_letters(self) -> None:
        """Every dead letter about a canary (this run's or an earlier one's) leaves its queue."""
        for consumer in [*self.ctx.consumers(), self.ctx.forwarder()]:
            for role, url in consumer.queues.items():
                if queue_depth(self.ctx.client("sqs"), url).visible:
                    reader = self._reader(url, role)
                    for letter in reader.letters(limit=100):
                        if is_canary(letter.object_key):
                            self._canary_letters.append((reader, letter))
        for reader, letter in self._canary_letters:
            reader.delete(letter)
        self._canary_letters.clear()

    # --- probes -------------------------------------------------------------------------------------

    def _record_stored(self) -> bool:
        records = [item for item in self._owned_items() if "data" in item]
        if not records:
            return False
        data = [TypeDeserializer().deserialize(record["data"]) for record in records]
        if data != [self.body]:
            raise SmokeFailure(
                INGEST, f"the canary's records in {self.table} are {data}, expected [{self.body}]"
            )
        return True

    def _records_removed(self) -> bool:
        if any("data" in item for item in self._owned_items()):
            return False
        return self._state().get("status") == "deleted"

    def _owned_items(self) -> list[dict[str, Any]]:
        """Every item the canary owns, whatever its partition (key layout 2 spreads an object over
        `<key>#NN`; layout 1 used `<key>`): found through the `by-owner` index, one Query."""
        dynamodb = self.ctx.client("dynamodb")
        keys = dynamodb.query(
            TableName=self.table,
            IndexName=OWNER_INDEX,
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":o": {"S": f"{self.bucket}/{self.key}"}},
        ).get("Items", [])
        found = []
        for key in keys:  # the index is KEYS_ONLY and eventually consistent: read each item itself
            item = dynamodb.get_item(
                TableName=self.table, Key={"pk": key["pk"], "sk": key["sk"]}, ConsistentRead=True
            ).get("Item")
            if item:
                found.append(item)
        return found

    def _state(self) -> dict[str, Any]:
        item = (
            self.ctx.client("dynamodb")
            .get_item(
                TableName=self.table,
                Key={"pk": {"S": f"{STATE_PREFIX}{self.bucket}/{self.key}"}, "sk": {"S": STATE_SORT}},
                ConsistentRead=True,
            )
            .get("Item")
            or {}
        )
        return {name: next(iter(value.values())) for name, value in item.items()}

    def _event_in_queue(self, consumer: str, url: str, detail_type: str) -> bool:
        reader = self._reader(url, DLQ, hold_seconds=max(30, int(self.timeout) + 30))
        for letter in reader.letters():
            if letter.object_key == self.key and (letter.payload or {}).get("detail-type") == detail_type:
                reader.delete(letter)  # the canary's message is ours: ack it
                return True
        return False

    def _execution_started(self, state_machine_arn: str) -> bool:
        sfn = self.ctx.client("stepfunctions")
        executions = sfn.list_executions(stateMachineArn=state_machine_arn, maxResults=25).get(
            "executions", []
        )
        for execution in executions:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if quote_plus(self.key, safe="/") in str(described.get("input", "")):
                return True
        return False

    def _canary_dead_letter(self, url: str, role: str) -> DeadLetter | None:
        """This run's canary among the first messages of a dead-letter queue (left in the queue)."""
        sqs = self.ctx.client("sqs")
        if not queue_depth(sqs, url).visible:
            return None
        reader = QueueReader(sqs, url, role, visibility_timeout=30, wait_seconds=0)
        try:
            for letter in reader.letters(limit=50):
                if letter.object_key == self.key:
                    return letter
            return None
        finally:
            reader.release_all()

    def _reader(self, url: str, role: str, *, hold_seconds: int = 60) -> QueueReader:
        if url not in self._readers:
            self._readers[url] = QueueReader(
                self.ctx.client("sqs"),
                url,
                role,
                visibility_timeout=hold_seconds,
                wait_seconds=0 if self.ctx.local else 1,
            )
        return self._readers[url]

    def _release_readers(self) -> None:
        for reader in self._readers.values():
            reader.release_all()
        self._readers.clear()


def _last(arn_or_url: str) -> str:
    return arn_or_url.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {_one_line(str(error.get('Message', '')))}"
    return _one_line(str(exc))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{seconds:g}s"


def run_smoke(ctx: OpsContext, **kwargs: Any) -> SmokeReport:
    return Smoke(ctx, **kwargs).run()
