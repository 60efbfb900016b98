"""Where the Lambda package's trees are built, for the CDK constructs and the tools that inspect them
(the benchmark, the bytecode check) without importing the CDK."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_DIR = REPO_ROOT / "functions"  # the function code's package (the code asset adds schemas/)
LAYER_DIR = REPO_ROOT / ".build" / "layer"  # built by `make setup`; the layer asset's root
LAYER_PACKAGES = LAYER_DIR / "python"  # on Lambda: /opt/python
