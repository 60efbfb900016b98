"""The deployed stack under test: `eventpipe-<EVENTPIPE_STAGE or dev>` in the current AWS account.

Runs only with EVENTPIPE_E2E=1 and AWS credentials; otherwise every test here is skipped with the reason.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest

from eventpipe.ops.context import OpsContext, resolve_context
from tests.e2e.flows import Pipeline


def _skip_reason(session: boto3.session.Session) -> str | None:
    if os.environ.get("EVENTPIPE_E2E") != "1":
        return "end-to-end tests against AWS run only with EVENTPIPE_E2E=1"
    if session.get_credentials() is None:
        return "EVENTPIPE_E2E=1 but no AWS credentials were found"
    if session.region_name is None:
        return "EVENTPIPE_E2E=1 but no AWS region is configured (set AWS_REGION)"
    return None


def _stack() -> str:
    return f"eventpipe-{os.environ.get('EVENTPIPE_STAGE', 'dev')}"


@pytest.fixture(scope="session")
def deployed_context() -> OpsContext:
    """The deployed stack as the operator CLI sees it (what `eventpipe smoke --stack` acts on)."""
    reason = _skip_reason(boto3.session.Session())
    if reason:
        pytest.skip(reason)
    return resolve_context(stack=_stack())


@pytest.fixture(scope="session")
def deployed_pipeline() -> Pipeline:
    session = boto3.session.Session()
    reason = _skip_reason(session)
    if reason:
        pytest.skip(reason)
    stack = _stack()
    cloudformation = session.client("cloudformation")
    try:
        description = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except cloudformation.exceptions.ClientError as error:
        pytest.fail(f"stack {stack} cannot be described: {error}")
    outputs = {output["OutputKey"]: output["OutputValue"] for output in description.get("Outputs", [])}

    def client(service: str) -> Any:
        return session.client(service)

    # On AWS, delivery takes seconds and Lambda retries a failed async event after ~1 and ~2 minutes.
    return Pipeline(
        client=client, outputs=outputs, deadline_seconds=120, failure_deadline_seconds=600, poll_seconds=2
    )
