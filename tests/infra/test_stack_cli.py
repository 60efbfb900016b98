"""The real CDK CLI synthesizes the app through cdk.json (as `make synth` and `cdk deploy` do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stack_fixtures import REPO_ROOT


def test_cdk_cli_synthesizes_the_dev_stack_through_cdk_json(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    env.pop("CDK_CONTEXT_JSON", None)
    env.pop("CDK_OUTDIR", None)

    done = subprocess.run(
        [str(REPO_ROOT / "node_modules/.bin/cdk"), "synth", "--quiet", "-o", str(tmp_path), "eventpipe-dev"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    template = json.loads((tmp_path / "eventpipe-dev.template.json").read_text())
    assert {"BucketName", "EventBusName", "IngestRuleArn", "AuditQueueUrl"} <= set(template["Outputs"])
    assert "end-of-life" not in done.stderr  # jsii runs on the venv's Node 24, not the machine's Node 20


def test_the_app_synthesizes_without_cdk_json_context(tmp_path: Path) -> None:
    # `python app.py` outside the CDK CLI gets no cdk.json context: defaults and required flags apply.
    from infra.app_builder import build_app

    app, stack = build_app({}, outdir=str(tmp_path))
    app.synth()

    template = json.loads((tmp_path / f"{stack.stack_name}.template.json").read_text())
    assert stack.stack_name == "eventpipe-dev"
    assert {"BucketName", "IngestRuleArn"} <= set(template["Outputs"])
