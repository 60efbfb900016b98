"""Operator commands: consumers, replay, dlq, status, smoke, empty-buckets (issues 5, 10).

Each group lives in its own `cli_*` module: a thin layer that parses options, resolves where to act
(`context`), calls the domain modules and renders a table or `--json`. Every failure becomes one
line on stderr and a non-zero exit (`cli_support.operator_command`).
"""

from __future__ import annotations

import typer

from eventpipe.ops import cli_consumers, cli_dlq, cli_follow, cli_health, cli_inspect, cli_replay, cli_smoke


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root CLI."""
    app.add_typer(cli_consumers.consumers_app, name="consumers")
    app.add_typer(cli_replay.replay_app, name="replay")
    app.add_typer(cli_dlq.dlq_app, name="dlq")
    app.command("status")(cli_health.status)
    app.command("smoke")(cli_smoke.smoke)
    app.command("empty-buckets")(cli_health.empty_buckets)
    cli_inspect.register(app)
    cli_follow.register(app)
