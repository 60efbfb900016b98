"""The machine a figure came from: without it a benchmark number means nothing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, object]:
    """Cores usable by this process, CPU model, Python and the versions that shape the figures."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": usable,
        "cpu": _cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
        "executable": sys.executable,
        "boto3": _version("boto3"),
        "moto": _version("moto"),
        "aws-lambda-powertools": _version("aws-lambda-powertools"),
        "load_average_at_start": load_average(),
    }


def load_average() -> float | None:
    """1-minute load average: on shared cores, wall-clock figures taken under load are slower."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def commit(project_root: Path) -> dict[str, object]:
    """The commit measured, and whether the work tree differed from it (then the figures are not its)."""

    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments], cwd=project_root, capture_output=True, text=True, check=False
        )
        return completed.stdout.strip() if completed.returncode == 0 else ""

    status = git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results.json", ":!README.md"
    )
    return {"sha": git("rev-parse", "HEAD") or "unknown", "dirty": bool(status)}
