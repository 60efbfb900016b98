"""Deploy the real synthesized template into the emulator through its CloudFormation API."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.contract.paths import PROJECT_ROOT
from eventpipe.local import template_adaptation

# Inputs of the synthesized template: a change to any of these makes the template stale.
# What the template is made from: the CDK app, its config, the consumer registry (data + contract) and
# the reader's format table (the routing suffixes).
CDK_SOURCES = (
    "app.py",
    "cdk.json",
    "infra",
    "schemas",
    "consumers",
    "eventpipe/contract",
    "functions/core/domain/formats.py",
)


# The context keys local mode accepts: a stage setting, as `cdk synth -c eventpipe.<stage>.<setting>=V`.
USAGE_EXIT = UsageError.exit_code
CONTEXT_KEY_RE = re.compile(r"^eventpipe\.(?P<stage>[a-z][a-z0-9-]*)\.(?P<setting>[a-z0-9_]+)$")


def template_path(
    stage: str, project_root: Path = PROJECT_ROOT, context: Mapping[str, str] | None = None
) -> Path:
    """cdk.out's template of `stage`; with context overrides, a template of its own per set of them
    (the plain one stays what the sources describe)."""
    if not context:
        return project_root / "cdk.out" / f"eventpipe-{stage}.template.json"
    digest = hashlib.sha256(json.dumps(sorted(context.items())).encode()).hexdigest()[:12]
    return project_root / "cdk.out" / f"eventpipe-{stage}.context-{digest}.template.json"


def parse_context(pairs: Sequence[str], stage: str, project_root: Path = PROJECT_ROOT) -> dict[str, str]:
    """CDK-style `-c KEY=VALUE` overrides for the synth of `stage`, checked before anything starts.

    Values stay strings, as `cdk synth -c` passes them; infra/config.py reads the flat keys
    `eventpipe.<stage>.<setting>` and validates them. The same validation runs here first, so an unknown
    setting or a bad value is one line and exit 2 instead of a failed start: in a process of its own
    (`context_check`), as the synth runs, because the operator CLI never imports infra (import contract
    "infra-ops-siblings"). Raises UsageError on a malformed pair, an unknown key, a key of another stage
    or an invalid value."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise UsageError(f"-c {pair!r}: expected KEY=VALUE, e.g. -c eventpipe.{stage}.log_level=DEBUG")
        match = CONTEXT_KEY_RE.match(key)
        if match is None:
            raise UsageError(f"-c {key}: unknown key; local mode accepts eventpipe.{stage}.SETTING")
        if match["stage"] != stage:
            raise UsageError(f"-c {key}: names stage {match['stage']!r}, but the stage started is {stage!r}")
        overrides[key] = value
    if overrides:
        done = subprocess.run(
            [sys.executable, "-m", "eventpipe.local.context_check", stage, json.dumps(overrides)],
            cwd=project_root,
            capture_output=True,
            text=True,
            check=False,
        )
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if done.returncode == USAGE_EXIT:
            raise UsageError(reason)
        if done.returncode != 0:
            raise EventpipeError(f"checking the -c overrides failed: {reason}")
    return overrides


def template_is_stale(template: Path, project_root: Path = PROJECT_ROOT) -> bool:
    """Missing, or older than one of the CDK sources (e.g. after `eventpipe consumers new`)."""
    if not template.exists():
        return True
    built = template.stat().st_mtime
    for name in CDK_SOURCES:
        source = project_root / name
        files = source.rglob("*") if source.is_dir() else [source]
        if any(
            path.is_file() and "__pycache__" not in path.parts and path.stat().st_mtime > built
            for path in files
        ):
            return True
    return False


def ensure_template(
    stage: str, project_root: Path = PROJECT_ROOT, context: Mapping[str, str] | None = None
) -> Path:
    """The synthesized template of `stage`; synthesized with app.py (no CDK CLI) when missing or stale,
    so local mode and the tests always run the stack the sources describe. `context` holds checked
    overrides (`parse_context`) given to the synth as `cdk synth -c` gives them."""
    path = template_path(stage, project_root, context)
    if not template_is_stale(path, project_root):
        return path
    lock_dir = project_root / ".eventpipe"
    lock_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test workers may all find the template stale: one synthesizes, the others wait.
    with (lock_dir / "synth.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template_is_stale(path, project_root):
            _synthesize(stage, project_root, path, context or {})
    return path


def cdk_json_context(project_root: Path) -> dict[str, Any]:
    context: dict[str, Any] = json.loads((project_root / "cdk.json").read_text()).get("context", {})
    return context


def _synthesize(stage: str, project_root: Path, path: Path, overrides: Mapping[str, str]) -> None:
    if not (project_root / "app.py").exists():
        raise EventpipeError(f"{path} is missing and there is no app.py to synthesize it; run `make synth`")
    # Command-line context wins over cdk.json's, as with `cdk synth -c`.
    context = {**cdk_json_context(project_root), "stage": stage, **overrides}
    bin_dir = str(Path(sys.executable).parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Synthesized next to the template, then moved over it in one step: an emulator starting meanwhile
    # (another test worker, a second terminal) reads the old or the new template, never half of one.
    with tempfile.TemporaryDirectory(prefix=".synth-", dir=path.parent) as outdir:
        env = {
            **os.environ,
            "CDK_OUTDIR": outdir,
            "CDK_CONTEXT_JSON": json.dumps(context),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        }
        done = subprocess.run(
            [sys.executable, "app.py"], cwd=project_root, env=env, capture_output=True, text=True, check=False
        )
        built = Path(outdir) / f"eventpipe-{stage}.template.json"
        if done.returncode != 0 or not built.exists():
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EventpipeError(f"synthesizing eventpipe-{stage} failed: {reason}")
        os.replace(built, path)


@dataclass(frozen=True)
class Deployment:
    stack: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    seconds: float


def deploy(
    template_file: Path,
    *,
    stack: str,
    session: Any,
    endpoint_url: str,
    region: str,
    account: str,
    timeout: float = 120.0,
) -> Deployment:
    """Create `stack` from the adapted template, wait for CREATE_COMPLETE, then apply post-deploy fixes."""
    started = time.monotonic()
    adapted = template_adaptation.adapt_template(json.loads(template_file.read_text()))

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url, region_name=region)

    cloudformation = client("cloudformation")
    try:
        cloudformation.create_stack(
            StackName=stack,
            TemplateBody=json.dumps(adapted.template),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except ClientError as error:
        raise EventpipeError(f"deploying {stack} into the emulator failed: {error}") from error
    deadline = time.monotonic() + timeout
    while True:
        description = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        status = description["StackStatus"]
        if status == "CREATE_COMPLETE":
            break
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            raise EventpipeError(
                f"deploying {stack} into the emulator ended in {status}: "
                f"{_first_failure(cloudformation, stack)}"
            )
        time.sleep(0.2)
    physical = {
        resource["LogicalResourceId"]: resource.get("PhysicalResourceId", "")
        for resource in cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
        if "LogicalResourceId" in resource  # moto lists the types it skipped without one
    }
    template_adaptation.post_deploy(adapted, physical, client, region=region, account=account, stack=stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    return Deployment(stack=stack, outputs=outputs, physical_ids=physical, seconds=time.monotonic() - started)


def _first_failure(cloudformation: Any, stack: str) -> str:
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    for event in events:
        if event.get("ResourceStatus", "").endswith("FAILED"):
            return f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}"
    return "no failed resource reported"
