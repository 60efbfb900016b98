"""Builds the CDK app from context: used by `app.py` (context from the CDK CLI) and by the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App

from infra.config import StageConfig, load_config
from infra.nag import enable_nag
from infra.stack import EventpipeStack


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, EventpipeStack]:
    """Validate the configuration first (ConfigError), then build the stack with cdk-nag enabled."""
    app = App(context=dict(context) if context is not None else None, outdir=outdir)
    config: StageConfig = load_config(app.node.try_get_context)
    stack = EventpipeStack(
        app,
        config.stack_name,
        config=config,
        description=f"eventpipe ({config.stage}): S3 -> EventBridge -> consumers ingest pipeline",
    )
    enable_nag(app)
    return app, stack
