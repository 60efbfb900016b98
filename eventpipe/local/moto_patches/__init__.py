"""Every runtime patch of moto 5.2.5 local mode needs, one module per service (nothing else patches moto).

`install(hooks)` applies them once per process, before moto's server starts serving; `hooks` is how
the patches reach the event engine and the Lambda runtime. Patches by service:
- `s3`: H1 AWS-shaped S3 -> EventBridge events on the default bus only; H9 the notification config.
- `events`: H2 delivery by the local engine; H3 pattern validation; H6 no CloudTrail-style
  notifications; H8 RetryPolicy limits; H10 archive sizes. `events_replay`: H4 replays.
- `cloudformation`: H7 `Ref` to a bus or an archive yields its name.
- `awslambda`: H5 Invoke runs the project's LambdaRuntime; H11 the configuration generation; H13 SQS
  event source mappings validated and run by the local pollers.
- `routing`: H12 moto's request routing reads its service list once.
`topology` is the engine's read view of moto's EventBridge backend. Each patch, the AWS behaviour it
reproduces and the test that shows it: docs/local-mode.md.
"""

from __future__ import annotations

import threading

from eventpipe.local.moto_patches import awslambda, cloudformation, events, events_replay, routing, s3
from eventpipe.local.moto_patches.awslambda import lambda_config_generation
from eventpipe.local.moto_patches.hooks import Hooks
from eventpipe.local.moto_patches.topology import MotoTopology

_installed: Hooks | None = None  # the hooks of this process, once installed
_install_lock = threading.Lock()


def install(hooks: Hooks) -> None:
    """Monkeypatch moto (idempotent per process). Must run before the moto server starts serving."""
    global _installed
    with _install_lock:
        if _installed is not None:
            _installed.engine, _installed.runtime = hooks.engine, hooks.runtime
            _installed.event_sources = hooks.event_sources
            return
        _installed = hooks
    s3.install(hooks)
    events.install(hooks)
    events_replay.install(hooks)
    cloudformation.install()
    awslambda.install(hooks)
    routing.install()


__all__ = ["Hooks", "MotoTopology", "install", "lambda_config_generation"]
