"""`eventpipe demo` (`make demo`): the whole pipeline offline, with the sample data, verified.

Synthesizes the stack when its template is missing or older than the CDK sources, starts the embedded
AWS with the stack deployed, uploads every file of `samples/` (keys = paths relative to samples/),
waits until processing settles, prints what landed (items, rejects, dead-letter depths), runs
`eventpipe smoke` against it (a canary through every hop, then removed), stops the emulator and exits 0
only when what landed matches `samples/expected.json` and the smoke test passed.

`samples/expected.json` (owned with the samples) lists, per uploaded object, how many items it should own
and the rejects its report should hold:
`{"objects": {"<key>": {"items": N, "rejects": [{"position": P, "reason": "<reason>"}, ...]}}}`, and
optionally `"records": [{...}, ...]`: the exact records the object's items must hold, in position order.
Every consumer's dead-letter and failure queue must be empty too.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from boto3.dynamodb.types import TypeDeserializer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.contract.local_state import STATE_DIR_ENV
from eventpipe.contract.paths import PROJECT_ROOT
from eventpipe.local.cli import Context
from eventpipe.ops.context import resolve_context
from eventpipe.ops.smoke import SmokeReport, run_smoke

SAMPLES_DIR = PROJECT_ROOT / "samples"
EXPECTED_FILE = "expected.json"
REJECTS_PREFIX = "rejects/"
SETTLE_TIMEOUT_SECONDS = 60.0
SHOWN_ATTRIBUTES = 3


@dataclass(frozen=True)
class Reject:
    object_key: str
    position: int
    reason: str
    detail: str


@dataclass
class Landed:
    """What the pipeline produced: items per object, rejects, and the depth of every failure queue."""

    items: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    queue_depths: dict[str, int] = field(default_factory=dict)

    def items_per_object(self) -> Counter[str]:
        return Counter(str(item.get("source_key", "?")) for item in self.items)


@dataclass(frozen=True)
class DemoResult:
    landed: Landed
    problems: list[str]
    seconds: float
    smoke: SmokeReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the steps ------------------------------------------------------------------------------------


def sample_files(samples_dir: Path = SAMPLES_DIR) -> dict[str, Path]:
    """Object key -> file, for every sample except the expectations."""
    return {
        path.relative_to(samples_dir).as_posix(): path
        for path in sorted(samples_dir.rglob("*"))
        if path.is_file() and path.name != EXPECTED_FILE
    }


def fresh_template(stage: str, console: Console, context: Mapping[str, str] | None = None) -> Path:
    """The stage's template (with `context` overrides: its own one), synthesized first when it is
    missing or older than the CDK sources."""
    from eventpipe.local.deploy import ensure_template, template_is_stale, template_path

    path = template_path(stage, context=context)
    if not template_is_stale(path):
        console.log(f"template up to date: {path.relative_to(PROJECT_ROOT)}")
        return path
    with console.status(f"synthesizing eventpipe-{stage} (the template is missing or stale)..."):
        ensure_template(stage, context=context)
    console.log(f"template synthesized: {path.relative_to(PROJECT_ROOT)}")
    return path


def upload_samples(s3: Any, bucket: str, files: Mapping[str, Path], progress: Progress) -> None:
    task = progress.add_task("uploading samples", total=len(files))
    for key, path in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        progress.advance(task)


def collect(client: Any, outputs: Mapping[str, str]) -> Landed:
    """Read what landed: record items of the table, rejects reports, failure-queue depths.

    The demo's table is small, and it must also show items of objects nobody uploaded, which reading
    the uploaded objects one by one (eventpipe/ops/object_records.py) would miss: a Scan sees every
    item whatever its partition (`<key>#NN` under key layout 2), then sorting puts each object's
    records in position order."""
    landed = Landed()
    deserializer = TypeDeserializer()
    dynamodb = client("dynamodb")
    scan: dict[str, Any] = {"TableName": outputs["TableName"], "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**scan)
        for item in page.get("Items", []):
            if "data" in item:  # record items; object-state items carry no data
                landed.items.append({name: deserializer.deserialize(value) for name, value in item.items()})
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    landed.items.sort(key=lambda item: (str(item.get("source_key")), int(item.get("position", 0))))
    landed.rejects = list(_rejects(client("s3"), outputs["RejectsBucketName"], outputs["BucketName"]))
    sqs = client("sqs")
    for name, url in sorted(outputs.items()):
        if name.endswith(("DlqUrl", "FailureQueueUrl")):
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            landed.queue_depths[name.removesuffix("Url")] = sum(int(value) for value in attributes.values())
    return landed


def _rejects(s3: Any, rejects_bucket: str, source_bucket: str) -> Iterable[Reject]:
    # Reports live at rejects/<source bucket>/<source key>/<sequencer>.jsonl
    # (functions/core/domain/rejects_report.py).
    prefix = f"{REJECTS_PREFIX}{source_bucket}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=rejects_bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            object_key = entry["Key"].removeprefix(prefix).rpartition("/")[0]
            body = s3.get_object(Bucket=rejects_bucket, Key=entry["Key"])["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    report = json.loads(line)
                    yield Reject(
                        object_key=object_key,
                        position=int(report.get("position", 0)),
                        reason=str(report.get("reason", "?")),
                        detail=str(report.get("detail", "")),
                    )


def verify(expected: Mapping[str, Any], landed: Landed) -> list[str]:
    """Every difference between what was expected and what landed, one line each."""
    problems = []
    expected_objects: Mapping[str, Any] = expected.get("objects", {})
    counts = landed.items_per_object()
    for key, want in expected_objects.items():
        items = int(want.get("items", 0))
        if counts.get(key, 0) != items:
            problems.append(f"{key}: {counts.get(key, 0)} item(s) landed, expected {items}")
        records = want.get("records")
        if records is not None:
            got = [item["data"] for item in landed.items if item.get("source_key") == key]
            if got != _exact(records):
                problems.append(f"{key}: records {got} differ from expected {records}")
        wanted_rejects = sorted((int(r["position"]), str(r["reason"])) for r in want.get("rejects", []))
        got_rejects = sorted((r.position, r.reason) for r in landed.rejects if r.object_key == key)
        if got_rejects != wanted_rejects:
            problems.append(f"{key}: rejects {got_rejects} differ from expected {wanted_rejects}")
    for key in sorted(set(counts) - set(expected_objects)):
        problems.append(f"{key}: {counts[key]} unexpected item(s)")
    for key in sorted({r.object_key for r in landed.rejects} - set(expected_objects)):
        problems.append(f"{key}: unexpected rejects report")
    problems.extend(
        f"{queue} holds {depth} message(s)" for queue, depth in landed.queue_depths.items() if depth
    )
    return problems


def _exact(records: Any) -> Any:
    """Expected records as DynamoDB returns them: every number a Decimal."""
    return json.loads(json.dumps(records), parse_float=Decimal, parse_int=Decimal)


# --- presentation ---------------------------------------------------------------------------------


def render(console: Console, landed: Landed) -> None:
    items = Table(title=f"DynamoDB items ({len(landed.items)})", title_justify="left")
    items.add_column("object", overflow="fold")
    items.add_column("pos", justify="right")
    items.add_column("key (pk / sk)", overflow="fold")
    items.add_column("attributes", overflow="fold")
    for item in landed.items:
        data = item.get("data", {})
        shown = ", ".join(f"{name}={_short(data[name])}" for name in list(data)[:SHOWN_ATTRIBUTES])
        more = f" (+{len(data) - SHOWN_ATTRIBUTES})" if len(data) > SHOWN_ATTRIBUTES else ""
        items.add_row(
            str(item.get("source_key", "")),
            str(item.get("position", "")),
            f"{item['pk']} / {item['sk']}",
            shown + more,
        )
    console.print(items)

    rejects = Table(title=f"Rejects ({len(landed.rejects)})", title_justify="left")
    for column in ("object", "pos", "reason", "detail"):
        rejects.add_column(column, overflow="fold", justify="right" if column == "pos" else "left")
    for reject in sorted(landed.rejects, key=lambda r: (r.object_key, r.position)):
        rejects.add_row(reject.object_key, str(reject.position), reject.reason, _short(reject.detail, 60))
    console.print(rejects)

    queues = Table(title="Dead-letter and failure queues", title_justify="left")
    queues.add_column("queue")
    queues.add_column("messages", justify="right")
    for queue, depth in landed.queue_depths.items():
        queues.add_row(queue, f"[red]{depth}[/red]" if depth else "0")
    console.print(queues)


def _short(value: Any, limit: int = 28) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the command ----------------------------------------------------------------------------------


def run_demo(
    *,
    console: Console,
    stage: str = "dev",
    state_dir: Path | None = None,
    samples_dir: Path = SAMPLES_DIR,
    template: Path | None = None,
    context: Mapping[str, str] | None = None,
) -> DemoResult:
    from eventpipe.local.emulator import Emulator

    started = time.monotonic()
    expected_path = samples_dir / EXPECTED_FILE
    if not expected_path.exists():
        raise EventpipeError(f"{expected_path} is missing: the demo cannot tell whether it worked")
    try:
        expected = json.loads(expected_path.read_text())
    except json.JSONDecodeError as error:
        raise EventpipeError(f"{expected_path} is not valid JSON: {error}") from error
    files = sample_files(samples_dir)
    if not files:
        raise EventpipeError(f"{samples_dir} holds no sample files to upload")

    template = template or fresh_template(stage, console, context)

    with console.status("starting the embedded AWS and deploying the stack..."):
        emulator = Emulator.start(
            stage=stage, template=template, state_dir=state_dir or PROJECT_ROOT / ".eventpipe" / "demo"
        )
    try:
        console.log(f"{emulator.stack} deployed at {emulator.endpoint} ({time.monotonic() - started:.1f}s)")
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
        ) as progress:
            upload_samples(emulator.client("s3"), emulator.outputs["BucketName"], files, progress)
        console.log(f"uploaded {len(files)} sample file(s) to {emulator.outputs['BucketName']}")
        with console.status("waiting until processing settles..."):
            try:
                emulator.wait_idle(timeout=SETTLE_TIMEOUT_SECONDS)
            except TimeoutError as error:
                reason = f"processing did not settle: {error} (logs: {emulator.state_dir})"
                raise EventpipeError(reason) from error
        console.log(f"processing settled ({time.monotonic() - started:.1f}s)")
        landed = collect(emulator.client, emulator.outputs)
        with console.status("smoke test: a canary through every hop..."):
            smoke = smoke_test(emulator.state_dir)
        console.log(
            f"smoke test {'passed' if smoke.passed else 'failed'} ({time.monotonic() - started:.1f}s)"
        )
    finally:
        with console.status("stopping the embedded AWS..."):
            emulator.stop()
    render(console, landed)
    from eventpipe.ops.cli_smoke import render as render_smoke

    render_smoke(smoke, console)
    problems = verify(expected, landed)
    if smoke.failure is not None:
        problems.append(f"smoke test failed: {smoke.failure}")
    return DemoResult(landed=landed, problems=problems, seconds=time.monotonic() - started, smoke=smoke)


def smoke_test(state_dir: Path) -> SmokeReport:
    """`eventpipe smoke --local` on the demo's emulator, found through its state file like the CLI does."""
    with _state_dir_env(state_dir):
        ctx = resolve_context(local=True)
    return run_smoke(ctx, timeout_seconds=SETTLE_TIMEOUT_SECONDS)


@contextmanager
def _state_dir_env(state_dir: Path) -> Iterator[None]:
    previous = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(state_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(STATE_DIR_ENV, None)
        else:
            os.environ[STATE_DIR_ENV] = previous


def demo(
    stage: Annotated[str, typer.Option("--stage", help="Which synthesized stack to deploy.")] = "dev",
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Where the demo emulator keeps its state and logs.",
            show_default=".eventpipe/demo",
        ),
    ] = None,
    samples_dir: Annotated[
        Path,
        typer.Option(
            "--samples-dir",
            help=f"Files to upload (keys = relative paths) with their {EXPECTED_FILE}.",
            exists=True,
            file_okay=False,
            show_default="samples/",
        ),
    ] = SAMPLES_DIR,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            help="Deploy this synthesized template as is (default: cdk.out, synthesized when stale).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    context: Context = None,
) -> None:
    """Run the whole pipeline offline with the sample data and check what landed.

    Examples: `eventpipe demo` (what `make demo` runs); `eventpipe demo --samples-dir my-files/`;
    `eventpipe demo -c eventpipe.dev.log_level=DEBUG` (what `make demo CDK_ARGS="-c ..."` runs).
    """
    from eventpipe.local.deploy import parse_context

    overrides = parse_context(context or [], stage)
    if overrides and template is not None:
        raise UsageError("-c and --template exclude each other: -c needs the stack synthesized")
    console = Console(log_path=False)
    result = run_demo(
        console=console,
        stage=stage,
        state_dir=state_dir,
        samples_dir=samples_dir,
        template=template,
        context=overrides,
    )
    console.print(f"wall time: {result.seconds:.1f}s")
    if not result.ok:
        raise EventpipeError(
            f"what landed differs from {EXPECTED_FILE}: {result.problems[0]}"
            + (f" (+{len(result.problems) - 1} more)" if len(result.problems) > 1 else "")
        )
    console.print(
        f"[green]demo passed[/green]: what landed matches {EXPECTED_FILE}, and the smoke test passed"
    )


def register(app: typer.Typer) -> None:
    """Add `eventpipe demo` to the root CLI."""
    app.command(name="demo")(demo)
