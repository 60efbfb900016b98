#!/usr/bin/env python3
"""CDK entry point (`cdk.json`: `.venv/bin/python app.py`). Builds the stack for the stage given by
`-c stage=NAME` (default dev); a configuration error is one line on stderr and exit status 1."""

from __future__ import annotations

import sys

from infra.app_builder import build_app
from infra.config import ConfigError


def main() -> int:
    try:
        app, _ = build_app()
    except ConfigError as exc:
        print(f"eventpipe configuration error: {exc}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
