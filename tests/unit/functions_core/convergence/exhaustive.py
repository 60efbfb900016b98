"""The exhaustive convergence checker: every history of one key up to a bound, every delivery schedule.

For one operation sequence (a history of one key, see `s3_model.py`) it explores every interleaving of
the operations with the deliveries of their events: each event delivered after its operation, in any
order, plus at most one extra delivery of any event at any later point (a duplicate, or an archive
replay days later) and at most one failed attempt (a crash in the middle of a write after which the
attempt gives its lease back, or a kill that leaves the lease held until it expires, while other events
find the object busy and announce themselves). Wherever every operation is done, every event has been
delivered and no lease is held, the table must hold exactly the records of the key's current version.

Fan-out and resume (issue 12): in the `fan-out` scenario the first two puts are large enough to be
split into two byte ranges (a small threshold), so their ingest only sends range tasks; each task is
then a step of its own, delivered in any order, at most one of them (or one event) a second time later,
and the one failed attempt may be a range worker that crashes midway (it stays registered as a writer
until its deadline), or the coordinator dying right after it sent the tasks. A newer event may arrive,
wait and take over at any point of a fan-out; a lease may expire while tasks wait in the queue. In the
`resumed` scenario every record is a checkpoint and the failed attempt dies after its first checkpoint,
so its retry (or another delivery of the event) resumes where it stopped, unless another event's
attempt ran in between. In the `continued` scenario every attempt runs out of time at its first
checkpoint (ingest) or removal check (delete) and hands the object over to a continuation task, which
does the same, one record at a time; the failed attempt dies just before its hand-over is sent, so
Lambda's retry (same request id, same lease token) and newer events meet a state an earlier hand-over
left behind. A schedule ends only once no range task is left in the queue; a state from
which no step can finish the history (a lease never freed, a task that can never finish) is a failure.

Pruning, and why it is sound: the use cases are deterministic functions of (the bucket, the table, the
event, the clock); the bucket is determined by how many operations were performed. Two schedules that
reach the same (operations performed, table, rejects reports, queued range tasks, events delivered,
duplicate and failure budgets left) have identical futures, so that state is explored once and its
result (the number of complete schedules below it) is reused. The count of schedules reported is exact:
it counts every distinct schedule, explored or reused. Time: the clock reads START at every step, and
letting time pass (`expire`) moves the stored lease expiries and fan-out writer deadlines into the past
instead. The use cases only compare the clock with those stored times (timestamps they write are never
compared), so this keeps every comparison's outcome, and states that differ only by how long ago a
lease expired are one.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from functions.core.domain.datasets import DatasetRegistry
from functions.core.domain.events import ObjectEvent
from functions.core.domain.object_state import CLOCK_MARGIN, ObjectState, TransientStoreError
from functions.core.domain.range_task import RangeTask
from functions.core.domain.table_layout import STATE_PREFIX, record_partition
from functions.core.use_cases import fan_out, mirror_object, range_ingest, version_writer
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.mirror_object import content_id
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import FanoutPolicy, LeasePolicy, Services
from functions.core.use_cases.range_ingest import ingest_range

from .memory_backend import MemoryQueue, MemoryRecordStore, MemoryReports
from .s3_model import KeyHistory, ModelReader, jsonl

LEASE_SECONDS = 300.0
START = 1_800_000_000.0  # the clock of every step
EXPIRED = START - 1  # the expiry of a lease that time ran out on
GONE = EXPIRED - CLOCK_MARGIN - 1  # the deadline of a fan-out writer whose invocation surely ended


@dataclass(frozen=True)
class Scenario:
    """A kind of bucket and dataset: how to build a put's body and what the table should hold."""

    name: str
    key: str
    versioned: bool
    bodies: tuple[list[Any], ...]  # the records of put #j are bodies[j % len(bodies)] (None: not JSON)
    table_key: Callable[[str, int, dict[str, Any]], tuple[str, str]]
    fanout_threshold: int | None = None  # objects above it are fanned out (None: never)
    checkpoint_every: int | None = None  # version_writer.CHECKPOINT_EVERY for this scenario
    fault_skip: int = 0  # batch writes an attempt completes before the injected fault strikes
    fault_loses_single: bool = False  # the fault drops a one-item batch (else it lands, then the crash)
    hand_over: bool = False  # every attempt hands over to a continuation at its first check

    def body(self, put_index: int) -> list[Any]:
        return self.bodies[put_index % len(self.bodies)]


def _positional(key: str, position: int, record: dict[str, Any]) -> tuple[str, str]:
    return (record_partition(key, position), f"{position:012d}")


def _natural(key: str, position: int, record: dict[str, Any]) -> tuple[str, str]:
    return (f"people#{record['Email']}", "record")


def _person(email: str, n: int) -> dict[str, Any]:
    return {"Name": f"person {n}", "Role": "dev", "Email": f"{email}@example.com"}


# Puts alternate between shapes so that every overwrite changes something: longer, shorter, a record
# that moves position, a line that is rejected where an older version had a record.
POSITIONAL_BODIES = ([{"put": 0}], [{"put": 1}, {"put": 1, "n": 2}], [None, {"put": 2}])
NATURAL_BODIES = ([_person("a", 0)], [_person("a", 1), _person("b", 1)], [None, _person("b", 2)])

# Fan-out: the first two shapes are split into two ranges (over FANOUT_THRESHOLD bytes, at most twice
# that), the third one is small and ingested in one invocation. Lines are 9 bytes long.
FANOUT_BODIES = ([{"p": 0}, {"p": 0}], [{"p": 1}, None, {"p": 1}], [{"p": 2}])
FANOUT_THRESHOLD = 14

SCENARIOS = {
    "versioned": Scenario("versioned", "data/a.jsonl", True, POSITIONAL_BODIES, _positional),
    "unversioned": Scenario("unversioned", "data/a.jsonl", False, POSITIONAL_BODIES, _positional),
    "versioned-natural-key": Scenario(
        "versioned-natural-key", "people/a.jsonl", True, NATURAL_BODIES, _natural
    ),
    "fan-out": Scenario(
        "fan-out",
        "data/a.jsonl",
        False,
        FANOUT_BODIES,
        _positional,
        fanout_threshold=FANOUT_THRESHOLD,
    ),
    # Every record is a checkpoint; the failed attempt dies in its second batch, after the first one,
    # and that batch is lost: a retry resuming one record too far would leave a hole.
    "resumed": Scenario(
        "resumed",
        "data/a.jsonl",
        True,
        POSITIONAL_BODIES,
        _positional,
        checkpoint_every=1,
        fault_skip=1,
        fault_loses_single=True,
    ),
    # One record per invocation: each attempt writes (or removes) one item, checkpoints and hands over;
    # the fault lets that first batch land and strikes before the hand-over is sent (memory_backend).
    "continued": Scenario(
        "continued",
        "data/a.jsonl",
        True,
        POSITIONAL_BODIES,
        _positional,
        checkpoint_every=1,
        fault_skip=1,
        hand_over=True,
    ),
}


def operation_sequences(versioned: bool, length: int) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """Every sequence of `length` operations on one key that S3 accepts (an operation with nothing to
    act on is left out, as S3 would publish nothing)."""

    def extend(
        prefix: tuple[tuple[Any, ...], ...], versions: list[bool]
    ) -> Iterator[tuple[tuple[Any, ...], ...]]:
        # `versions`: the key's versions, oldest first; True for an object version, False for a marker.
        if len(prefix) == length:
            yield prefix
            return
        choices: list[tuple[tuple[Any, ...], list[bool]]] = []
        if versioned:
            choices.append((("put",), [*versions, True]))
            choices.append((("delete",), [*versions, False]))
            if versions and versions[-1]:
                choices.append((("expire-current",), [*versions, False]))
            for index in range(len(versions)):
                choices.append((("delete-version", index), versions[:index] + versions[index + 1 :]))
            for index in range(len(versions) - 1):
                choices.append((("expire-noncurrent", index), versions[:index] + versions[index + 1 :]))
        else:
            choices.append((("put",), [True]))
            if versions:
                choices.append((("delete",), []))
                choices.append((("expire-current",), []))
        for operation, after in choices:
            yield from extend((*prefix, operation), after)

    yield from extend((), [])


def perform(history: KeyHistory, scenario: Scenario, operation: tuple[Any, ...]) -> dict[str, Any]:
    kind = operation[0]
    if kind == "put":
        history.puts += 1
        return history.put(jsonl(scenario.body(history.puts - 1)))
    if kind in ("delete", "expire-current"):
        event = history.delete(reason="DeleteObject" if kind == "delete" else "Lifecycle Expiration")
        assert event is not None
        return event
    reason = "DeleteObject" if kind == "delete-version" else "Lifecycle Expiration"
    return history.delete_version(operation[1], reason=reason)


@dataclass
class Result:
    schedules: int = 0
    states: int = 0
    failures: list[str] = field(default_factory=list)
    # Distinct steps (not schedules) that exercised fan-out and resume: the search reached them.
    fan_outs: int = 0
    range_commits: int = 0
    resumes: int = 0
    continuations: int = 0


class Checker:
    """Explores one operation sequence of one scenario (see the module docstring)."""

    def __init__(
        self, scenario: Scenario, operations: tuple[tuple[Any, ...], ...], *, faults: bool = True
    ) -> None:
        self.scenario = scenario
        self.operations = operations
        self.faults = faults
        self.datasets = DatasetRegistry.load()
        # The bucket after k operations, and the events published so far.
        self.histories: list[KeyHistory] = []
        self.events: list[dict[str, Any]] = []
        self.lines: dict[bytes, list[Any]] = {}
        history = KeyHistory(scenario.key, scenario.versioned)
        self.histories.append(_copy_history(history))
        for operation in operations:
            event = perform(history, scenario, operation)
            self.events.append(event)
            self.histories.append(_copy_history(history))
        for j in range(history.puts):
            self.lines[jsonl(scenario.body(j))] = scenario.body(j)
        self.parsed = [ObjectEvent.from_eventbridge(e) for e in self.events]
        self.replays = [
            ObjectEvent.from_eventbridge({**e, "replay-name": "replay-days-later"}) for e in self.events
        ]
        self.store = MemoryRecordStore()
        self.reports = MemoryReports()
        self.queue = MemoryQueue(self.store)
        self.result = Result()
        self._memo: dict[tuple[Any, ...], int] = {}
        self._path: list[str] = []  # the moves that led to the node being explored (for failures)

    def run(self) -> Result:
        start: tuple[Any, ...] = (0, frozenset(), False, not self.faults, self._freeze())
        saved = version_writer.CHECKPOINT_EVERY, fan_out.ThreadPoolExecutor, range_ingest.uuid
        saved_removal = mirror_object.REMOVAL_CHECK_EVERY
        if self.scenario.checkpoint_every is not None:
            version_writer.CHECKPOINT_EVERY = self.scenario.checkpoint_every  # type: ignore[misc]
        if self.scenario.hand_over:
            mirror_object.REMOVAL_CHECK_EVERY = 1  # type: ignore[misc]
            self.queue.fail_before_send = True
        # The coordinator counts newlines on a thread pool; one thread start costs more than a whole
        # step here, and the order of those reads changes nothing: count them on this thread.
        fan_out.ThreadPoolExecutor = _SameThread  # type: ignore[misc,assignment]
        # A range worker names itself by its invocation (given below) and a random suffix: the suffix
        # is fixed here so that equal states are equal (the invocation id keeps names distinct).
        range_ingest.uuid = _FixedIds  # type: ignore[assignment]
        try:
            self.result.schedules = self._explore(start)
        finally:
            version_writer.CHECKPOINT_EVERY, fan_out.ThreadPoolExecutor, range_ingest.uuid = saved  # type: ignore[misc]
            mirror_object.REMOVAL_CHECK_EVERY = saved_removal  # type: ignore[misc]
        self.result.states = len(self._memo)
        return self.result

    # --- exploration -----------------------------------------------------------------------------
    def _freeze(self) -> bytes:
        store = self.store
        return pickle.dumps(
            (
                store.states,
                store.items,
                sorted(store.index_lag),
                sorted(self.reports.reports.items()),
                tuple(sorted(self.queue.bodies)),  # the queue is a multiset: SQS keeps no order
            )
        )

    def _thaw(self, frozen: bytes) -> None:
        states, items, lag, reports, pending = pickle.loads(frozen)
        self.store.restore_from(states, items, set(lag))
        self.reports.reports = dict(reports)
        self.queue.bodies = list(pending)

    def _explore(self, node: tuple[Any, ...]) -> int:
        known = self._memo.get(node)
        if known is None:
            known = self._memo[node] = self._search(node)
        return known

    def _search(self, node: tuple[Any, ...]) -> int:
        performed, delivered, duplicated, failed, frozen = node
        schedules = 0
        self._thaw(frozen)
        lease_held = any(_held(state) for state in self.store.states.values())
        pending = sorted(set(self.queue.bodies))
        complete = (
            performed == len(self.operations)
            and len(delivered) == len(self.events)
            and not lease_held
            and not pending
        )
        if complete:
            self._check(node)
            schedules += 1
        moves: list[tuple[str, Any]] = []
        if performed < len(self.operations):
            moves.append(("perform", performed))
        for index in range(performed):
            if index not in delivered:
                moves.append(("deliver", index))
                if not failed:
                    moves.append(("crash", index))
                    moves.append(("kill", index))
            elif not duplicated:
                moves.append(("duplicate", index))
        for task in pending:
            moves.append(("run", task))
            if not duplicated:
                # SQS will deliver it once more, at any later point: it stays in the queue.
                moves.append(("run-and-keep", task))
            if not failed:
                # A failed range keeps the lease either way: a kill is a crash here.
                moves.append(("crash-run", task))
        if lease_held:
            moves.append(("expire", 0))
        progress = False
        for move, argument in moves:
            self._thaw(frozen)
            self._path.append(f"{move} {_task_name(argument) if isinstance(argument, str) else argument}")
            child = self._step(node, move, argument)
            # A step that changed nothing (a busy retry that found the object as it was) is no new schedule.
            if child is not None and child != node:
                progress = True
                schedules += self._explore(child)
            self._path.pop()
        if not complete and not progress:
            # Nothing can happen any more, yet an event or a task is left, or the lease is never freed.
            self.result.failures.append(f"{self._describe(node)}: stuck (no step completes the history)")
        return schedules

    def _step(self, node: tuple[Any, ...], move: str, argument: Any) -> tuple[Any, ...] | None:
        performed, delivered, duplicated, failed, _ = node
        if move == "perform":
            return self._node(performed + 1, delivered, duplicated, failed)
        if move == "expire":
            # Time passes beyond every lease held and every fan-out writer's deadline (see the module
            # docstring: the stored times move back, not the clock forward).
            for state in self.store.states.values():
                if _held(state):
                    state["lease_expires"] = {"N": repr(EXPIRED)}
                for deadline in state.get("fanout_writers", {}).get("M", {}).values():
                    deadline["N"] = repr(min(float(deadline["N"]), GONE))
            return self._node(performed, delivered, duplicated, failed)
        if move in ("run", "run-and-keep", "crash-run"):
            return self._run_task(node, move, argument)
        index = argument
        services = self._services(performed, index, attempt=move)
        event = self.replays[index] if move == "duplicate" else self.parsed[index]
        if move in ("crash", "kill"):
            self._arm(move)
        resumable = event.is_created and self._resumable(event)
        try:
            outcome = (ingest_object if event.is_created else delete_object)(services, event)
        except Exception as failure:  # the attempt failed: Lambda retries the event later
            if move in ("deliver", "duplicate") and not _retryable(failure):
                self.result.failures.append(f"{self._describe(node)} {move} e{index}: {failure!r}")
                return None
            self.store.down = False
            if move in ("crash", "kill"):
                return self._node(performed, delivered, duplicated, True)
            return self._node(performed, delivered, duplicated, failed)
        if move in ("crash", "kill"):
            # The attempt ended before writing anything (stale, or nothing to write): no fault happened.
            self.store.fault = None
            return None
        self._count(outcome, resumable)
        if move == "duplicate":
            return self._node(performed, delivered, True, failed)
        return self._node(performed, delivered | {index}, duplicated, failed)

    def _run_task(self, node: tuple[Any, ...], move: str, body: str) -> tuple[Any, ...] | None:
        """SQS delivers a range task: done (it leaves the queue), or failed (it stays, to be retried)."""
        performed, delivered, duplicated, failed, _ = node
        task = RangeTask.from_json(body)
        # Each delivery is an invocation of its own; a crashed one stays registered as a writer.
        invocation = f"{task.token}/range{task.byte_range.index}{'-crashed' if move == 'crash-run' else ''}"
        services = replace(self._services(performed, 0, attempt="range"), invocation_id=invocation)
        if move == "crash-run":
            self._arm("crash")
        try:
            outcome = ingest_range(services, task)
        except Exception as failure:  # the worker failed: the message becomes visible again
            if move != "crash-run" and not _retryable(failure):
                self.result.failures.append(f"{self._describe(node)} {move} {_task_name(body)}: {failure!r}")
                return None
            self.store.down = False
            # A failed task stays in the queue (and the duplicate it would have left is not spent).
            return self._node(performed, delivered, duplicated, failed or move == "crash-run")
        if move == "crash-run":
            self.store.fault = None  # the task ended before writing anything: no fault happened
            return None
        self._count(outcome, resumable=False)
        if move == "run-and-keep":
            return self._node(performed, delivered, True, failed)
        self.queue.bodies.remove(body)
        return self._node(performed, delivered, duplicated, failed)

    def _node(
        self, performed: int, delivered: frozenset[int], duplicated: bool, failed: bool
    ) -> tuple[Any, ...]:
        return (performed, delivered, duplicated, failed, self._freeze())

    def _arm(self, fault: str) -> None:
        self.store.fault = fault
        self.store.fault_skip = self.scenario.fault_skip
        self.store.fault_loses_single = self.scenario.fault_loses_single

    def _resumable(self, event: ObjectEvent) -> bool:
        state = ObjectState.from_item(self.store.states.get(event.owner))
        return state.resumable_from(event.sequencer, content_id(event)) > 0

    def _count(self, outcome: Outcome, resumable: bool) -> None:
        if outcome.status == Status.CONTINUED:
            self.result.continuations += 1
        elif outcome.status == Status.FANNED_OUT:
            self.result.fan_outs += 1
        elif "object committed" in outcome.detail:
            self.result.range_commits += 1
        elif resumable and outcome.status == Status.INGESTED:
            self.result.resumes += 1

    def _services(self, performed: int, index: int, *, attempt: str) -> Services:
        threshold = self.scenario.fanout_threshold
        if self.scenario.hand_over:
            threshold = 1 << 30  # a work queue for continuations; nothing is large enough to fan out
        return Services(
            store=self.store,
            objects=ModelReader(self.histories[performed]),
            reports=self.reports,
            datasets=self.datasets,
            lease=LeasePolicy(lease_seconds=LEASE_SECONDS, max_wait_seconds=0.0),
            fanout=FanoutPolicy() if threshold is None else FanoutPolicy(self.queue, threshold),
            clock=lambda: START,
            sleep=lambda _: None,
            # Lambda retries an invocation with its request id; a duplicate delivery is another invocation.
            invocation_id=f"e{index}-{'b' if attempt == 'duplicate' else 'a'}",
            # Past at once: every attempt hands over at its first checkpoint or removal check.
            hand_over_at=START if self.scenario.hand_over else None,
        )

    def _check(self, node: tuple[Any, ...]) -> None:
        final = self.histories[-1]
        expected: dict[tuple[str, str], Any] = {}
        current = final.current
        if current is not None and current.body is not None:
            for position, line in enumerate(self.lines[current.body], start=1):
                if line is not None:
                    expected[self.scenario.table_key(final.key, position, line)] = line
        found = {
            key: _plain(item["data"])
            for key, item in self.store.items.items()
            if not key[0].startswith(STATE_PREFIX)
        }
        if found != expected:
            self.result.failures.append(f"{self._describe(node)}: table {found} != bucket {expected}")

    def _describe(self, node: tuple[Any, ...]) -> str:
        return f"[{self.scenario.name}] {list(self.operations)} after: {'; '.join(self._path)}"


class _FixedIds:
    """`uuid` for range_ingest: the same suffix every time."""

    @staticmethod
    def uuid4() -> Any:
        return SimpleNamespace(hex="0" * 32)


class _SameThread:
    """`ThreadPoolExecutor.map` run on the calling thread."""

    def __init__(self, max_workers: int) -> None:
        del max_workers

    def __enter__(self) -> _SameThread:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(function, items)


def _task_name(body: str) -> str:
    task = RangeTask.from_json(body)
    return f"range {task.byte_range.index} of {task.event.event_id} (token {task.token})"


def _held(state: dict[str, Any]) -> bool:
    return "lease_token" in state and float(state["lease_expires"]["N"]) >= START


def _retryable(failure: Exception) -> bool:
    return isinstance(failure, TransientStoreError)


def _plain(attribute: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as the JSON value it was converted from (enough for these records)."""
    ((kind, value),) = attribute.items()
    if kind == "M":
        return {name: _plain(inner) for name, inner in value.items()}
    if kind == "L":
        return [_plain(inner) for inner in value]
    if kind == "N":
        return int(value)
    if kind == "NULL":
        return None
    return value


def _copy_history(history: KeyHistory) -> KeyHistory:
    return KeyHistory(history.key, history.versioned, list(history.versions), history.changes, history.puts)
