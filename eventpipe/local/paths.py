"""Where local mode finds the project it runs (app.py, cdk.json, functions/): defined in the contract."""

from __future__ import annotations

from eventpipe.contract.paths import PROJECT_ROOT

__all__ = ["PROJECT_ROOT"]
