"""Rendering: a rich table for people, `bench/results.json` for machines and the README."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.formatting import figure
from bench.results import BenchResult


def _verdict(met: bool | None) -> str:
    return {True: "[green]met[/green]", False: "[red]missed[/red]", None: "[yellow]n/a[/yellow]"}[met]


def render(
    console: Console, machine: dict[str, Any], config: dict[str, Any], results: list[BenchResult]
) -> None:
    console.print(
        f"[bold]machine[/bold] {machine['cores']} cores ({machine['cpu']}), {machine['python']}, "
        f"{machine['platform']}; boto3 {machine['boto3']}, moto {machine['moto']}"
    )
    console.print(f"[bold]run[/bold] {', '.join(f'{k}={v}' for k, v in config.items())}")

    figures = Table(
        title="eventpipe benchmarks (median of runs; spread = (max-min)/median)", show_lines=False
    )
    for column, justify in (("benchmark", "left"), ("metric", "left"), ("median", "right")):
        figures.add_column(column, justify=justify)  # type: ignore[arg-type]
    figures.add_column("min .. max", justify="right")
    figures.add_column("spread", justify="right")
    figures.add_column("runs", justify="right")
    for result in results:
        first = True
        if result.error:
            figures.add_row(result.title, f"[red]error: {result.error}[/red]", "", "", "", "")
        for metric in result.metrics:
            summary = metric.summary
            figures.add_row(
                result.title if first else "",
                f"{metric.name} [dim]({metric.unit})[/dim]",
                figure(summary.median),
                f"{figure(summary.low)} .. {figure(summary.high)}",
                f"{summary.spread_pct:.0f}%",
                str(summary.runs),
            )
            first = False
        figures.add_section()
    console.print(figures)

    goals = Table(title="goals")
    goals.add_column("benchmark")
    goals.add_column("goal")
    goals.add_column("measured", justify="right")
    goals.add_column("verdict")
    for result in results:
        for goal in result.goals:
            measured = "-" if goal.measured is None else figure(goal.measured)
            goals.add_row(result.title, goal.description, measured, _verdict(goal.met))
    console.print(goals)

    for result in results:
        console.print(f"[bold]{result.title}[/bold] inputs: {json.dumps(result.inputs, default=str)}")
        for note in result.notes:
            console.print(f"  - {note}", markup=False)


def write_json(
    path: Path,
    machine: dict[str, Any],
    config: dict[str, Any],
    results: list[BenchResult],
    commit: dict[str, Any] | None = None,
) -> None:
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": machine,
        "config": config,
        "benchmarks": {result.key: result.as_dict() for result in results},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
