"""Builds the CDK app from context: used by `app.py` (context from the CDK CLI) and by the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App

from infra.config import StageConfig, load_config
from infra.nag import enable_nag
from infra.stack import EventpipeStack

# Feature flags the stack is only valid with, also when `python app.py` runs without cdk.json's context:
# without this one CDK grants S3 log delivery through an ACL, which the access-log bucket (ACLs disabled,
# BucketOwnerEnforced) refuses at synth.
REQUIRED_FEATURE_FLAGS: Mapping[str, Any] = {"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, EventpipeStack]:
    """Validate the configuration first (ConfigError), then build the stack with cdk-nag enabled."""
    app = App(context=dict(context) if context is not None else None, outdir=outdir)
    for flag, value in REQUIRED_FEATURE_FLAGS.items():
        if app.node.try_get_context(flag) is None:
            app.node.set_context(flag, value)
    config: StageConfig = load_config(app.node.try_get_context)
    stack = EventpipeStack(
        app,
        config.stack_name,
        config=config,
        description=f"eventpipe ({config.stage}): S3 -> EventBridge -> consumers ingest pipeline",
    )
    enable_nag(app)
    return app, stack
