"""What the moto patches call into, filled in by the server once the engine and the runtime exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventpipe.local.engine import EventEngine


@dataclass
class Hooks:
    """What the hooks call into; filled in by the server once engine and runtime exist."""

    engine: EventEngine | None = None
    runtime: Any = None  # eventpipe.local.lambda_runtime.LambdaRuntime
    event_sources: Any = None  # eventpipe.local.lambda_runtime.SqsEventSources
    account: str = "123456789012"
    region: str = "us-east-1"
