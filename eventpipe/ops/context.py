"""Where the operator commands act: a deployed stack or the running local mode.

Everything is discovered from the stack outputs (names in docs/architecture.md), read from
CloudFormation for a deployed stack or from `.eventpipe/local/state.json` in local mode (which also
holds the credentials generated for the run: the emulator accepts no others), plus the
consumer registry (`consumers/*.json`). Other areas (local mode, demo, tests) can reuse
`resolve_context` / `OpsContext.from_outputs` and `aws_errors` instead of building their own clients.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from eventpipe.contract import outputs
from eventpipe.contract.consumers import Consumer, RegistryError, load_consumers
from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.contract.local_state import (
    STATE_DIR,
    STATE_FILE,
    default_state_dir,
    state_dir_from_env,
)
from eventpipe.contract.outputs import kebab_case, pascal_case
from eventpipe.contract.paths import PROJECT_ROOT
from functions.core.domain.formats import READABLE_SUFFIXES

DEFAULT_STACK = "eventpipe-dev"
FORWARDER_RULE_ARN = outputs.FORWARDER_PREFIX + outputs.RULE_ARN
LOCAL_ENV_FLAG = "EVENTPIPE_LOCAL"
FORWARDER = "forwarder"
RANGE_WORKER = "range-worker"

_STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")
# Standard retry mode absorbs throttling on AWS; short timeouts keep a dead local endpoint quick to report.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


class StackNotFoundError(EventpipeError):
    """The named stack does not exist (e.g. already destroyed)."""


class TargetKind(StrEnum):
    """What a consumer's rule delivers to, derived from the target ARN's service."""

    LAMBDA = "lambda"
    SQS = "sqs"
    SNS = "sns"
    SFN = "sfn"
    BUS = "bus"

    @classmethod
    def from_arn(cls, arn: str) -> TargetKind:
        service = arn.split(":")[2] if arn.count(":") >= 5 else ""
        kinds = {"lambda": cls.LAMBDA, "sqs": cls.SQS, "sns": cls.SNS, "states": cls.SFN, "events": cls.BUS}
        if service not in kinds:
            raise EventpipeError(
                f"unsupported target ARN {arn!r} (expected lambda, sqs, sns, states or events)"
            )
        return kinds[service]


@dataclass(frozen=True)
class ConsumerResources:
    """One consumer's deployed resources, from the `<P>...` stack outputs (None when absent)."""

    name: str
    rule_arn: str | None
    rule_name: str | None
    dlq_url: str | None
    target_arn: str | None
    function_name: str | None = None
    failure_queue_url: str | None = None
    pattern: Mapping[str, Any] | None = None  # from the registry; the deployed rule may differ
    # The range worker only: its work queue (where redriven tasks go) and that queue's DLQ.
    work_queue_url: str | None = None
    tasks_dlq_url: str | None = None

    @property
    def deployed(self) -> bool:
        return self.rule_arn is not None

    @property
    def kind(self) -> TargetKind | None:
        return TargetKind.from_arn(self.target_arn) if self.target_arn else None

    @property
    def queues(self) -> dict[str, str]:
        """Dead-letter queues by role: `dlq` (rule could not deliver), `failures` (Lambda failed),
        `tasks` (range tasks the range worker failed on `maxReceiveCount` times)."""
        found = {"dlq": self.dlq_url, "failures": self.failure_queue_url, "tasks": self.tasks_dlq_url}
        return {role: url for role, url in found.items() if url}


@dataclass
class OpsContext:
    """Resolved target: stack name, outputs and a boto3 session (pointed at the emulator when local)."""

    stack: str
    region: str
    outputs: dict[str, str]
    local: bool = False
    endpoint: str | None = None
    profile: str | None = None
    registry: tuple[Any, ...] = ()
    # Local mode: the access key id and secret generated for the run (the emulator refuses others).
    local_credentials: Mapping[str, str] | None = field(default=None, repr=False)
    _session: boto3.Session | None = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_outputs(
        cls,
        outputs: Mapping[str, str],
        *,
        stack: str = DEFAULT_STACK,
        region: str = "us-east-1",
        endpoint: str | None = None,
        registry: tuple[Any, ...] | None = None,
        session: boto3.Session | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> OpsContext:
        """A context from known outputs (tests, local mode, scripts that already hold them).
        Local mode needs `credentials` (`aws_access_key_id`, `aws_secret_access_key`, as in the state
        file) or a `session` holding them."""
        return cls(
            stack=stack,
            region=region,
            outputs=dict(outputs),
            local=endpoint is not None,
            endpoint=endpoint,
            registry=load_registry() if registry is None else registry,
            local_credentials=dict(credentials) if credentials else None,
            _session=session,
        )

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            if self.local:
                if not self.local_credentials:
                    self.local_credentials = _credentials_of_running_emulator(self.endpoint)
                if not self.local_credentials:
                    raise EventpipeError(
                        "local mode needs the credentials of the running emulator: "
                        "restart it with `eventpipe local start`"
                    )
                self._session = boto3.Session(
                    region_name=self.region,
                    aws_access_key_id=self.local_credentials["aws_access_key_id"],
                    aws_secret_access_key=self.local_credentials["aws_secret_access_key"],
                )
            else:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
        return self._session

    def client(self, service: str) -> Any:
        """A cached boto3 client (typed as Any: the stubs are not a project dependency)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint, region_name=self.region, config=_CLIENT_CONFIG
            )
        return self._clients[service]

    def output(self, key: str) -> str:
        """A required stack output; a missing one means the stack is not what this CLI expects."""
        value = self.outputs.get(key)
        if not value:
            raise EventpipeError(f"stack {self.stack} has no output {key!r}: is it an eventpipe stack?")
        return value

    def consumers(self) -> list[ConsumerResources]:
        """Every consumer: registry order first, then any deployed only (e.g. removed from the registry)."""
        names = [str(entry.name) for entry in self.registry]
        patterns = {str(entry.name): getattr(entry, "pattern", None) for entry in self.registry}
        for key in self.outputs:
            if key.endswith(outputs.RULE_ARN) and key != FORWARDER_RULE_ARN:
                name = kebab_case(key.removesuffix(outputs.RULE_ARN))
                if pascal_case(name) not in {pascal_case(known) for known in names}:
                    names.append(name)
        return [self._consumer(name, patterns.get(name)) for name in names]

    def consumer(self, name: str) -> ConsumerResources:
        """One consumer by name; an unknown name lists the known ones."""
        for consumer in self.consumers():
            if consumer.name == name:
                return consumer
        known = ", ".join(c.name for c in self.consumers()) or "none"
        raise UsageError(f"unknown consumer {name!r} (known: {known})")

    def deployed_consumer(self, name: str) -> ConsumerResources:
        consumer = self.consumer(name)
        if not consumer.deployed:
            raise EventpipeError(f"consumer {name!r} is in the registry but not deployed in {self.stack}")
        return consumer

    def forwarder(self) -> ConsumerResources:
        """The default-bus forwarding rule, shown beside the consumers because it has a DLQ too."""
        return ConsumerResources(
            name=FORWARDER,
            rule_arn=self.outputs.get(FORWARDER_RULE_ARN),
            rule_name=_rule_name(self.outputs.get(FORWARDER_RULE_ARN)),
            dlq_url=self.outputs.get(outputs.FORWARDER_PREFIX + outputs.DLQ_URL),
            target_arn=self.outputs.get(outputs.EVENT_BUS_ARN),
        )

    def range_worker(self) -> ConsumerResources | None:
        """The fan-out's range worker, shown beside the consumers because its work queue has a DLQ;
        None when the stack has none (no consumer starts fan-outs)."""
        prefix = outputs.RANGE_WORKER_PREFIX
        dlq_url = self.outputs.get(prefix + outputs.DLQ_URL)
        if not dlq_url:
            return None
        return ConsumerResources(
            name=RANGE_WORKER,
            rule_arn=None,
            rule_name=None,
            dlq_url=None,
            target_arn=None,
            function_name=self.outputs.get(prefix + outputs.FUNCTION_NAME),
            work_queue_url=self.outputs.get(prefix + outputs.QUEUE_URL),
            tasks_dlq_url=dlq_url,
        )

    def dead_letter_owners(self) -> list[ConsumerResources]:
        """Everything with dead-letter queues: the consumers, the forwarder, the range worker."""
        range_worker = self.range_worker()
        return [*self.consumers(), self.forwarder(), *([range_worker] if range_worker else [])]

    def component(self, name: str) -> ConsumerResources:
        """A deployed consumer, the forwarder or the range worker, by name (`eventpipe dlq|logs -c NAME`)."""
        if name == FORWARDER:
            return self.forwarder()
        if name == RANGE_WORKER:
            range_worker = self.range_worker()
            if range_worker is None:
                raise EventpipeError(f"stack {self.stack} has no range worker (no consumer starts fan-outs)")
            return range_worker
        return self.deployed_consumer(name)

    def _consumer(self, name: str, pattern: Mapping[str, Any] | None) -> ConsumerResources:
        prefix = pascal_case(name)
        rule_arn = self.outputs.get(prefix + outputs.RULE_ARN)
        return ConsumerResources(
            name=name,
            rule_arn=rule_arn,
            rule_name=self.outputs.get(prefix + outputs.RULE_NAME) or _rule_name(rule_arn),
            dlq_url=self.outputs.get(prefix + outputs.DLQ_URL),
            target_arn=self.outputs.get(prefix + outputs.TARGET_ARN),
            function_name=self.outputs.get(prefix + outputs.FUNCTION_NAME),
            failure_queue_url=self.outputs.get(prefix + outputs.FAILURE_QUEUE_URL),
            pattern=pattern,
        )


def _rule_name(rule_arn: str | None) -> str | None:
    # arn:aws:events:REGION:ACCOUNT:rule/[BUS/]NAME
    return rule_arn.rsplit("/", 1)[-1] if rule_arn else None


def load_registry() -> tuple[Consumer, ...]:
    """The consumer registry (`consumers/*.json`) with the reader's routing suffixes; () outside the
    repository (the outputs still name every consumer). A broken entry is a one-line UsageError."""
    try:
        return load_consumers(readable_suffixes=READABLE_SUFFIXES)
    except RegistryError as exc:
        raise UsageError(f"consumer registry: {exc}") from None


def local_requested(flag: bool) -> bool:
    return flag or os.environ.get(LOCAL_ENV_FLAG, "") not in ("", "0", "false")


def find_state_file(start: Path | None = None) -> Path | None:
    """`$EVENTPIPE_LOCAL_STATE_DIR/state.json` if set, else `.eventpipe/local/state.json` in the project
    (`start`, default: the repository root). Never searched upward through parent directories: a
    state file planted in a parent (e.g. /tmp) must not redirect the CLI."""
    candidate = (state_dir_from_env() or default_state_dir(start or PROJECT_ROOT)) / STATE_FILE
    return candidate if candidate.is_file() and not candidate.is_symlink() else None


def _credentials_of_running_emulator(endpoint: str | None) -> dict[str, str] | None:
    """The credentials in the local state file (see `find_state_file`) if it describes `endpoint`."""
    path = find_state_file()
    if path is None:
        return None
    try:
        state = read_local_state(path)
        credentials = state["credentials"]
        if state.get("endpoint") != endpoint:
            return None
        return {
            "aws_access_key_id": str(credentials["access_key_id"]),
            "aws_secret_access_key": str(credentials["secret_access_key"]),
        }
    except (EventpipeError, KeyError, TypeError):
        return None


def read_local_state(path: Path) -> dict[str, Any]:
    """The state file's JSON, read without following a symlink and only if it is our own file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise EventpipeError(f"cannot read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as stream:
        if os.fstat(stream.fileno()).st_uid != os.getuid():
            raise EventpipeError(f"refusing {path}: it belongs to another user")
        try:
            state = json.loads(stream.read())
        except ValueError as exc:
            raise EventpipeError(f"{path} is not a valid local-mode state file ({exc})") from exc
    if not isinstance(state, dict):
        raise EventpipeError(f"{path} is not a valid local-mode state file")
    return state


def resolve_context(
    *, stack: str = DEFAULT_STACK, region: str | None = None, profile: str | None = None, local: bool = False
) -> OpsContext:
    """The context every command starts from: local mode when asked (flag or EVENTPIPE_LOCAL=1)."""
    if local_requested(local):
        return _local_context()
    if not _STACK_NAME.fullmatch(stack):
        raise UsageError(
            f"invalid stack name {stack!r}: CloudFormation names start with a letter and hold only "
            "letters, digits and '-' (e.g. eventpipe-prod)"
        )
    with aws_errors("reading the stack outputs"):
        # botocore itself reads only AWS_DEFAULT_REGION; AWS_REGION is what Lambda and the other SDKs set.
        session = boto3.Session(
            profile_name=profile, region_name=region or os.environ.get("AWS_REGION") or None
        )
        if not session.region_name:
            raise UsageError("no AWS region: pass --region, or set AWS_DEFAULT_REGION or a profile region")
        cloudformation = session.client("cloudformation", config=_CLIENT_CONFIG)
        try:
            stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                raise StackNotFoundError(f"stack {stack} not found in {session.region_name}") from exc
            raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return OpsContext(
        stack=stack,
        region=session.region_name,
        outputs=outputs,
        profile=profile,
        registry=load_registry(),
        _session=session,
    )


def _local_context() -> OpsContext:
    path = find_state_file()
    if path is None:
        raise EventpipeError(
            f"local mode is not running (no {STATE_DIR / STATE_FILE}): start it with `eventpipe local start`"
        )
    state = read_local_state(path)
    try:
        credentials = state["credentials"]
        return OpsContext.from_outputs(
            state["outputs"],
            stack=state.get("stack", DEFAULT_STACK),
            region=state.get("region", "us-east-1"),
            endpoint=state["endpoint"],
            credentials={
                "aws_access_key_id": str(credentials["access_key_id"]),
                "aws_secret_access_key": str(credentials["secret_access_key"]),
            },
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise EventpipeError(f"{path} is not a valid local-mode state file ({exc})") from exc


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Turn botocore failures into one-line EventpipeErrors that say what was being done."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        message = str(error.get("Message", "")).splitlines()[0] if error.get("Message") else str(exc)
        raise EventpipeError(f"{doing}: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise EventpipeError(f"{doing}: {exc}") from exc
