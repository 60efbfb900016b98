"""`eventpipe smoke --local` against the embedded AWS with the real stack deployed: it passes on a
healthy pipeline and leaves nothing behind, and it names the ingest hop when ingest is broken."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import pytest
import typer
from typer.testing import CliRunner

from eventpipe.local.emulator import Emulator
from eventpipe.ops.cli import register
from eventpipe.ops.smoke import SMOKE_PREFIX
from tests.e2e.flows import Pipeline
from tests.integration.conftest import Mailbox
from tests.integration.flows.test_ops_replay_redrive import set_ingest_env

pytestmark = pytest.mark.integration


@pytest.fixture
def smoke(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`smoke("--json")` runs `eventpipe smoke --local ...` as an operator would, discovering the
    emulator through its state file; returns the click Result."""
    monkeypatch.setenv("EVENTPIPE_LOCAL_STATE_DIR", str(emulator.state_dir))
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["smoke", "--local", "--timeout", "30s", *args])


@pytest.fixture
def pipeline(emulator: Emulator, aws: Callable[[str], Any], settle: Callable[[], None]) -> Pipeline:
    return Pipeline(client=aws, outputs=emulator.outputs, settle=settle)


@pytest.fixture
def empty_dead_letters(sqs: Any, outputs: dict[str, str], settle: Callable[[], None]) -> None:
    """Smoke requires every DLQ and failure queue to be empty; other tests of this session's emulator
    leave failures there on purpose, so they are purged first (after processing settled)."""
    settle()
    for name, url in outputs.items():
        if name.endswith(("DlqUrl", "FailureQueueUrl")):
            Mailbox(sqs, url).drain()  # not PurgeQueue: SQS allows one per queue per 60 seconds


def canary_keys_in(sqs: Any, url: str) -> list[str]:
    """Object keys of canary events in a queue (messages are left there: received with visibility 0)."""
    keys = []
    for _ in range(5):
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            event = body.get("requestPayload", body)
            key = unquote_plus(event.get("detail", {}).get("object", {}).get("key", ""))
            if key.startswith(SMOKE_PREFIX):
                keys.append(key)
    return sorted(set(keys))


@pytest.mark.usefixtures("empty_dead_letters")
def test_smoke_passes_on_a_healthy_pipeline_and_removes_the_canary(
    smoke: Callable[..., Any], pipeline: Pipeline, sqs: Any, outputs: dict[str, str]
) -> None:
    result = smoke("--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert report["key"].startswith(SMOKE_PREFIX)
    statuses = {(check["hop"], check["what"]): check["status"] for check in report["checks"]}
    hops = {hop for hop, _ in statuses}
    assert {"upload", "ingest", "table", "audit", "queues", "delete-sync"} <= hops
    assert set(statuses.values()) == {"ok"}
    # The audit queue saw both of the canary's events (smoke read and acked them).
    assert (
        "audit",
        "Object Created event in queue " + outputs["AuditQueueUrl"].rsplit("/", 1)[-1],
    ) in statuses
    # Nothing of the canary is left: no records, a tombstone, no message in any queue, and the key
    # reads as deleted.
    pipeline.settle()
    assert pipeline.records(report["key"]) == []
    assert canary_keys_in(sqs, outputs["AuditQueueUrl"]) == []
    versions = pipeline.aws("s3").list_object_versions(Bucket=pipeline.bucket, Prefix=report["key"])
    assert [marker["IsLatest"] for marker in versions.get("DeleteMarkers", [])] == [True]


@pytest.mark.usefixtures("empty_dead_letters")
def test_smoke_fails_naming_the_ingest_hop_when_ingest_is_broken(
    smoke: Callable[..., Any], pipeline: Pipeline, aws: Callable[[str], Any], outputs: dict[str, str]
) -> None:
    table = outputs["TableName"]
    set_ingest_env(pipeline, aws, "TABLE_NAME", f"{table}-missing")  # the fault
    try:
        result = smoke()
    finally:
        set_ingest_env(pipeline, aws, "TABLE_NAME", table)

    assert result.exit_code == 1, result.output
    reason = result.stderr.strip().splitlines()[-1]
    assert reason.startswith("error: ingest: "), reason
    assert "smoke test of" in result.stdout  # the table still shows each hop
    # Cleanup still ran: the canary's failure record is gone, so the next smoke starts clean.
    pipeline.settle()
    assert canary_keys_in(aws("sqs"), outputs["IngestFailureQueueUrl"]) == []
    assert smoke().exit_code == 0
