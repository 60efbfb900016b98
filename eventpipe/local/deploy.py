"""Deploy the real synthesized template into the emulator through its CloudFormation API."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from eventpipe.contract.errors import EventpipeError
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


def template_path(stage: str, project_root: Path = PROJECT_ROOT) -> Path:
    return project_root / "cdk.out" / f"eventpipe-{stage}.template.json"


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


def ensure_template(stage: str, project_root: Path = PROJECT_ROOT) -> Path:
    """The synthesized template of `stage`; synthesized with app.py (no CDK CLI) when missing or stale,
    so local mode and the tests always run the stack the sources describe."""
    path = template_path(stage, project_root)
    if not template_is_stale(path, project_root):
        return path
    lock_dir = project_root / ".eventpipe"
    lock_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test workers may all find the template stale: one synthesizes, the others wait.
    with (lock_dir / "synth.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template_is_stale(path, project_root):
            _synthesize(stage, project_root, path)
    return path


def _synthesize(stage: str, project_root: Path, path: Path) -> None:
    if not (project_root / "app.py").exists():
        raise EventpipeError(f"{path} is missing and there is no app.py to synthesize it; run `make synth`")
    cdk_json = json.loads((project_root / "cdk.json").read_text())
    context = {**cdk_json.get("context", {}), "stage": stage}
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
        built = Path(outdir) / path.name
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
