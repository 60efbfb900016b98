"""The contract is what infra, the operator CLI and local mode share: importing it loads nothing but the
standard library (so `pip install eventpipe` gets it without any extra) and nothing else of ours."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import eventpipe.contract

MODULES = sorted(
    f"eventpipe.contract.{info.name}" for info in pkgutil.iter_modules(eventpipe.contract.__path__)
)

PROBE = """
import importlib, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_every_contract_module_imports_only_the_standard_library() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *MODULES], capture_output=True, text=True, check=True)

    loaded = json.loads(done.stdout)
    foreign = [
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("eventpipe")
    ]
    ours_elsewhere = [
        name for name in loaded if name.startswith("eventpipe.") and not name.startswith("eventpipe.contract")
    ]
    assert "eventpipe.contract.consumers" in loaded
    assert foreign == []
    assert ours_elsewhere == []
