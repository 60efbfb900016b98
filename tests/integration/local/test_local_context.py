"""`eventpipe local start -c KEY=VALUE`: the override reaches the stage config of the deployed stack,
exactly as `cdk synth -c` would give it (here `log_level`, which every function gets as
POWERTOOLS_LOG_LEVEL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventpipe.local.deploy import parse_context, template_path
from eventpipe.local.emulator import Emulator

pytestmark = pytest.mark.integration
OVERRIDE = "eventpipe.dev.log_level=DEBUG"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    context = parse_context([OVERRIDE], "dev")
    running = Emulator.start(state_dir=tmp_path_factory.mktemp("context"), context=context)
    try:
        yield running
    finally:
        running.stop()


def test_a_context_override_reaches_every_deployed_function(emulator: Emulator) -> None:
    functions = emulator.client("lambda").list_functions()["Functions"]

    assert functions
    assert {f["Environment"]["Variables"].get("POWERTOOLS_LOG_LEVEL") for f in functions} == {"DEBUG"}


def test_the_override_is_synthesized_into_a_template_of_its_own(emulator: Emulator) -> None:
    deployed = Path(emulator.state["template"])
    resources = json.loads(deployed.read_text())["Resources"].values()
    levels = {
        r["Properties"]["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"]
        for r in resources
        if r["Type"] == "AWS::Lambda::Function"
    }

    assert deployed == template_path("dev", context=parse_context([OVERRIDE], "dev"))
    assert deployed != template_path("dev")  # the plain template keeps describing the sources
    assert levels == {"DEBUG"}
