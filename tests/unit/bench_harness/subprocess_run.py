"""Run `python -m bench ...` in a subprocess, as the bench smoke tests do: the harness sets the handler's
environment and starts its own server processes, which must not leak into other tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def run_bench(output: Path, *arguments: str) -> dict[str, Any]:
    """The results.json a run with `arguments` writes to `output`; fails the test if the run fails."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench", *arguments, "--output", str(output)],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return document
