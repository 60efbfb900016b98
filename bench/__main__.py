"""`python -m bench` (`make bench`): run the benchmarks, print a table, write bench/results.json."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console

from bench import coldstart, cpu, end_to_end, machine, memory, readme, report, scale, throughput
from bench.aws import EmbeddedAws
from bench.config import PROJECT_ROOT, BenchConfig
from bench.results import BenchResult

BENCHMARKS = ("throughput", "cpu", "memory", "cold_start", "end_to_end", "scale")
QUICK_SCALE = 0.05
RESULTS = PROJECT_ROOT / "bench" / "results.json"
README = PROJECT_ROOT / "README.md"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every input size (default 1.0)")
    parser.add_argument("--quick", action="store_true", help=f"tiny run: --scale {QUICK_SCALE}, fewer runs")
    parser.add_argument(
        "--runs", type=int, help="runs of the heavy benchmarks (default 5, memory at most 3; quick 1)"
    )
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=[], help="skip these benchmarks")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write JSON")
    parser.add_argument(
        "--readme",
        type=Path,
        help="README whose results section to regenerate (default: README.md when --output is the "
        "default bench/results.json, else none)",
    )
    parser.add_argument(
        "--render-only", action="store_true", help="run nothing: regenerate the README section from --output"
    )
    return parser.parse_args(argv)


def _readme_target(arguments: argparse.Namespace) -> Path | None:
    if arguments.readme:
        return Path(arguments.readme)
    return README if arguments.output.resolve() == RESULTS.resolve() else None


def _render_readme(arguments: argparse.Namespace, console: Console) -> None:
    target = _readme_target(arguments)
    if target is None:
        return
    document = json.loads(arguments.output.read_text(encoding="utf-8"))
    try:
        readme.update(target, document)
    except readme.MarkersError as missing:
        console.print(f"[red]{target}: {missing}[/red]")
        sys.exit(1)
    console.print(f"regenerated the results section of {target}")


class _SharedAws:
    """One embedded moto server for the benchmarks that need it, started on first use."""

    def __init__(self) -> None:
        self._aws: EmbeddedAws | None = None

    def get(self) -> EmbeddedAws:
        if self._aws is None:
            self._aws = EmbeddedAws()
        return self._aws

    def stop(self) -> None:
        if self._aws is not None:
            self._aws.stop()


def _run_one(name: str, config: BenchConfig, shared: _SharedAws) -> BenchResult:
    if name == "throughput":
        return throughput.run(config, shared.get())
    if name == "cpu":
        return cpu.run(config)
    if name == "memory":
        return memory.run(config, shared.get())
    if name == "cold_start":
        return coldstart.run(config, shared.get())
    if name == "scale":
        return scale.run(config)
    return end_to_end.run(config)


def main(argv: list[str] | None = None) -> list[BenchResult]:
    arguments = _parse(argv)
    if arguments.render_only:
        _render_readme(arguments, Console())
        return []
    config = BenchConfig(
        scale=QUICK_SCALE if arguments.quick and arguments.scale == 1.0 else arguments.scale,
        runs=arguments.runs or (1 if arguments.quick else 5),
        light_runs=3 if arguments.quick else 7,
    )
    selected = [name for name in arguments.only or BENCHMARKS if name not in arguments.skip]
    console = Console() if Console().is_terminal else Console(width=150)
    described_machine = machine.describe()
    described_commit = machine.commit(PROJECT_ROOT)
    described_config = config.describe() | {"benchmarks": selected}

    results: list[BenchResult] = []
    shared = _SharedAws()
    started = time.perf_counter()
    try:
        for name in selected:
            console.print(f"[dim]running {name}...[/dim]")
            bench_started = time.perf_counter()
            try:
                outcome = _run_one(name, config, shared)
            except Exception as failure:  # one broken benchmark must not hide the others' figures
                outcome = BenchResult(name, name, error=f"{type(failure).__name__}: {failure}")
                console.print(traceback.format_exc(), markup=False, highlight=False)
            outcome.inputs["wall_seconds"] = round(time.perf_counter() - bench_started, 1)
            results.append(outcome)
    finally:
        shared.stop()
    described_config["total_seconds"] = round(time.perf_counter() - started, 1)
    described_machine["load_average_at_end"] = machine.load_average()
    report.render(console, described_machine, described_config, results)
    report.write_json(arguments.output, described_machine, described_config, results, described_commit)
    scale.write_section(arguments.output, results)
    console.print(f"wrote {arguments.output}")
    _render_readme(arguments, console)
    return results


if __name__ == "__main__":
    main()
