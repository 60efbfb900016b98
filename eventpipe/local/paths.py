"""Where local mode finds the project it runs: the working tree holding app.py, cdk.json, functions/."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
