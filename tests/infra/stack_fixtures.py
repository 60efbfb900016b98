"""The stacks the infra tests synthesize, and the extra consumers of the test-only stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra_template import Synthesized, load

from eventpipe.contract.consumers import (
    Consumer,
    EventBusTarget,
    LambdaTarget,
    QueueTarget,
    RetryOverride,
    StateMachineTarget,
    TopicTarget,
    any_object_event,
    object_created,
    object_deleted,
)
from infra.registry import CONSUMERS

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
KINDS_EMAIL = "oncall@example.com"
# prod retains data, so synth requires an alarm recipient.
KINDS_CONTEXT: dict[str, Any] = {**CDK_CONTEXT, "stage": "prod", "eventpipe.prod.alarm_email": KINDS_EMAIL}
FOREIGN_BUS_ARN = "arn:aws:events:us-east-1:111122223333:event-bus/partner"

EXTRA_CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        name="thumbnails",
        pattern=object_created(prefix="images/", suffixes=(".png",)),
        target=LambdaTarget(reads_ingest_bucket=True),
        ignore_replays=True,
        retry=RetryOverride(max_retry_attempts=3, max_event_age_seconds=600),
    ),
    Consumer(name="to-queue", pattern=object_deleted(prefix="logs/"), target=QueueTarget(retention_days=4)),
    Consumer(name="to-topic", pattern=object_created(), target=TopicTarget()),
    Consumer(name="to-workflow", pattern=any_object_event(prefix="batch/"), target=StateMachineTarget()),
    Consumer(name="to-partner", pattern=object_created(), target=EventBusTarget(bus_arn=FOREIGN_BUS_ARN)),
    Consumer(name="to-own-bus", pattern=object_deleted(), target=EventBusTarget()),
)
KINDS_CONSUMERS = CONSUMERS + EXTRA_CONSUMERS


def synth(
    context: dict[str, Any], outdir: Path, consumers: tuple[Consumer, ...] | None = None
) -> Synthesized:
    from aws_cdk import App

    from infra.app_builder import build_app
    from infra.config import load_config
    from infra.nag import enable_nag
    from infra.stack import EventpipeStack

    if consumers is None:
        app, stack = build_app(context, outdir=str(outdir))
    else:
        app = App(context=context, outdir=str(outdir))
        config = load_config(app.node.try_get_context)
        stack = EventpipeStack(app, config.stack_name, config=config, consumers=consumers)
        enable_nag(app)
    app.synth()  # raises on any unacknowledged cdk-nag finding
    return load(
        outdir,
        stack.stack_name,
        consumer_resources={name: _logical_ids(stack, c) for name, c in stack.consumers.items()},
        consumer_outputs={name: frozenset(c.outputs) for name, c in stack.consumers.items()},
    )


def _logical_ids(stack: Any, construct: Any) -> frozenset[str]:
    from aws_cdk import CfnResource

    return frozenset(
        stack.resolve(child.logical_id)
        for child in construct.node.find_all()
        if isinstance(child, CfnResource)
    )
