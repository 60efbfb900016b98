"""`eventpipe empty-buckets` is guarded: a stack whose data is meant to outlive it (termination
protection, retained resources) is refused unless --force, and a person confirms by typing the stack
name; without a terminal only --yes proceeds. The stack is a real CloudFormation stack in moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from ops_fakes import STACK, Deployed
from typer.testing import CliRunner

from eventpipe.ops import cli, cli_health, cli_support
from eventpipe.ops.buckets import Protection, retained_resources

DATA_BUCKET = "eventpipe-dev-guarded"


def deploy_stack(deployed: Deployed, *, policy: str = "Delete", protected: bool = False) -> Any:
    """A stack owning one versioned bucket (with two versions of an object) under `policy`."""
    template = {
        "Resources": {
            "DataBucket": {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": policy,
                "UpdateReplacePolicy": policy,
                "Properties": {"BucketName": DATA_BUCKET},
            }
        }
    }
    cloudformation = deployed.ctx.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK, TemplateBody=json.dumps(template), EnableTerminationProtection=protected
    )
    s3 = deployed.ctx.client("s3")
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"{}", b'{"v": 2}'):
        s3.put_object(Bucket=DATA_BUCKET, Key="kept.json", Body=body)
    return s3


def versions(s3: Any) -> int:
    return len(s3.list_object_versions(Bucket=DATA_BUCKET).get("Versions", []))


@pytest.fixture
def run(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli_support, "resolve_context", lambda **_: deployed.ctx)
    app = typer.Typer()
    cli.register(app)
    runner = CliRunner()
    return lambda *args, stdin=None: runner.invoke(app, ["empty-buckets", *args], input=stdin)


@pytest.mark.parametrize("policy", ["Retain", "RetainExceptOnCreate", "Snapshot"])
def test_a_stack_that_retains_resources_is_refused_and_nothing_deleted(
    run: Any, deployed: Deployed, policy: str
) -> None:
    s3 = deploy_stack(deployed, policy=policy)

    result = run("--yes")

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: refusing to empty the buckets of {STACK}: it retains 1 resource(s) on deletion: "
        "DataBucket (AWS::S3::Bucket) (its data is meant to outlive it; pass --force only if it must "
        "really go)"
    ]
    assert versions(s3) == 2


def test_a_stack_with_termination_protection_is_refused(run: Any, deployed: Deployed) -> None:
    s3 = deploy_stack(deployed, protected=True)

    result = run("--yes")

    assert result.exit_code == 1
    assert "it has termination protection" in result.stderr
    assert versions(s3) == 2


def test_force_empties_a_protected_stack(run: Any, deployed: Deployed) -> None:
    s3 = deploy_stack(deployed, policy="Retain", protected=True)

    result = run("--force", "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert {"bucket": DATA_BUCKET, "deleted": 2, "missing": False, "errors": []} in json.loads(result.stdout)
    assert versions(s3) == 0


def test_without_a_terminal_and_without_yes_nothing_is_deleted(run: Any, deployed: Deployed) -> None:
    s3 = deploy_stack(deployed)

    result = run()

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: refusing to empty the buckets of {STACK} without confirmation: no terminal to ask on "
        "(pass --yes in scripts)"
    ]
    assert versions(s3) == 2


def test_yes_empties_an_unprotected_stack_without_asking(run: Any, deployed: Deployed) -> None:
    s3 = deploy_stack(deployed)

    result = run("--yes")

    assert result.exit_code == 0, result.output
    assert f"{DATA_BUCKET}: 2 versions and delete markers deleted" in result.stdout
    assert versions(s3) == 0


@pytest.mark.parametrize(("typed", "code", "left"), [(STACK, 0, 0), ("y", 1, 2), ("", 1, 2)])
def test_on_a_terminal_the_stack_name_must_be_typed(
    run: Any, deployed: Deployed, monkeypatch: pytest.MonkeyPatch, typed: str, code: int, left: int
) -> None:
    monkeypatch.setattr(cli_health, "_interactive", lambda: True)
    s3 = deploy_stack(deployed)

    result = run(stdin=f"{typed}\n")

    assert result.exit_code == code, result.output
    assert DATA_BUCKET in result.stderr  # the prompt names what would go
    if code:
        assert "error: not confirmed" in result.stderr
    assert versions(s3) == left


def test_retained_resources_reads_both_policies() -> None:
    template = {
        "Resources": {
            "Table": {"Type": "AWS::DynamoDB::Table", "UpdateReplacePolicy": "Retain"},
            "Queue": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Delete"},
            "Logs": {"Type": "AWS::Logs::LogGroup"},
        }
    }

    assert retained_resources(template) == ("Table (AWS::DynamoDB::Table)",)
    assert Protection().reason is None
