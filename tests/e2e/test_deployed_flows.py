"""The end-to-end flows (tests/e2e/flows.py) against a real deployed stack.

Skipped unless EVENTPIPE_E2E=1 and AWS credentials are present (see conftest.py). The objects these
tests upload stay under their own `e2e-flows/<run>/` prefix; the flows delete none of the stack's data.
The failing-consumer flow points the ingest function at a missing table for a few minutes (then restores
it): run these against a dev stage, never against a stack that serves real uploads. The smoke test
(`eventpipe smoke`) runs first: its canary lives under `_smoke/` and is removed again.
"""

from __future__ import annotations

import pytest

from eventpipe.ops.context import OpsContext
from eventpipe.ops.smoke import run_smoke
from tests.e2e import flows
from tests.e2e.flows import Pipeline

pytestmark = pytest.mark.e2e


def test_smoke_passes_on_the_deployed_stack(deployed_context: OpsContext) -> None:
    """What `make smoke` checks after a deploy: run first, on a stack no other flow has disturbed."""
    report = run_smoke(deployed_context, timeout_seconds=180)

    assert report.passed, report.as_json()
    assert {check.hop for check in report.checks} >= {"upload", "ingest", "table", "audit", "queues"}


def test_upload_creates_items(deployed_pipeline: Pipeline) -> None:
    latency = flows.upload_creates_items(deployed_pipeline)
    print(f"end-to-end latency on AWS (PutObject -> items visible): {latency:.2f} s")


def test_overwrite_replaces_items(deployed_pipeline: Pipeline) -> None:
    flows.overwrite_replaces_items(deployed_pipeline)


def test_delete_removes_items(deployed_pipeline: Pipeline) -> None:
    flows.delete_removes_items(deployed_pipeline)


def test_duplicate_upload_leaves_no_duplicates(deployed_pipeline: Pipeline) -> None:
    flows.duplicate_upload_leaves_no_duplicates(deployed_pipeline)


def test_failing_consumer_reaches_the_failure_queue_and_nothing_is_lost(deployed_pipeline: Pipeline) -> None:
    flows.failing_consumer_reaches_the_failure_queue(deployed_pipeline)
