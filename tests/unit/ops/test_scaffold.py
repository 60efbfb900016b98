"""`consumers new`: one registry data file the registry loads, and for Lambda a working function + test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eventpipe.contract.consumers import Consumer, load_consumers
from eventpipe.contract.errors import UsageError
from eventpipe.ops import cli, scaffold
from functions.core.domain.formats import READABLE_SUFFIXES

REPO = Path(scaffold.PROJECT_ROOT)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the parts of the repository the scaffold reads and writes."""
    shutil.copytree(REPO / "consumers", tmp_path / "consumers")
    shutil.copytree(REPO / "functions", tmp_path / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def load_registry(root: Path) -> tuple[Consumer, ...]:
    """The registry as infra and the CLI load it, from the copy."""
    return load_consumers(readable_suffixes=READABLE_SUFFIXES, directory=root / "consumers")


def existing(root: Path) -> list[str]:
    return [consumer.name for consumer in load_registry(root)]


def registry_files(root: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in (root / "consumers").iterdir()}


@pytest.mark.parametrize("target", ["sqs", "sns", "sfn", "bus", "lambda"])
def test_the_entry_is_appended_and_the_registry_still_loads(root: Path, target: str) -> None:
    before = existing(root)

    scaffold.scaffold("scaffold-probe", target, pattern=None, root=root)

    consumers = {c.name: c for c in load_registry(root)}
    assert sorted(consumers) == sorted([*before, "scaffold-probe"])
    assert consumers["scaffold-probe"].target.kind == target
    assert consumers["scaffold-probe"].pattern == {"detail-type": ["Object Created"]}


def test_a_pattern_file_becomes_the_entrys_pattern(root: Path, tmp_path: Path) -> None:
    pattern = {
        "detail-type": ["Object Deleted"],
        "detail": {"object": {"key": [{"prefix": 'it\'s "quoted"/'}]}},
    }
    path = tmp_path / "pattern.json"
    path.write_text(json.dumps(pattern))

    scaffold.scaffold("cleanup", "sqs", pattern=scaffold.read_pattern_file(path), root=root)

    assert {c.name: c for c in load_registry(root)}["cleanup"].pattern == pattern


def test_a_lambda_consumer_gets_a_handler_domain_and_test_that_pass_and_lint(root: Path) -> None:
    result = scaffold.scaffold("thumbnails", "lambda", pattern=None, root=root)

    assert {str(p) for p in result.files} == {
        "consumers/thumbnails.json",
        "functions/thumbnails/__init__.py",
        "functions/thumbnails/handler.py",
        "functions/core/use_cases/thumbnails.py",
        "tests/unit/functions/test_thumbnails_handler.py",
    }
    thumbnails = {c.name: c for c in load_registry(root)}["thumbnails"]
    assert thumbnails.handler == "functions.thumbnails.handler.lambda_handler"
    generated = [str(root / p) for p in result.files if p.suffix == ".py"]
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(REPO / "pyproject.toml")]
    assert subprocess.run([*ruff, "check", *config, *generated], capture_output=True).returncode == 0
    assert (
        subprocess.run([*ruff, "format", "--check", *config, *generated], capture_output=True).returncode == 0
    )
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/functions"],
        cwd=root,
        env={
            "PATH": str(Path(sys.executable).parent),
            "PYTHONPATH": str(root),
        },
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Thumbnails", "invalid consumer name"),
        ("thumb_nails", "invalid consumer name"),
        ("-thumbs", "invalid consumer name"),
        ("thumbs-", "invalid consumer name"),
        ("9lives", "invalid consumer name"),
        ("x" * 41, "invalid consumer name"),
        ("ingest", "consumer 'ingest' already exists"),
        ("deletesync", "collides with existing 'delete-sync'"),
        ("ports", "functions/core/use_cases/ports.py already exists"),
        ("forwarder", "consumer name 'forwarder' is reserved"),
    ],
)
def test_bad_or_taken_names_are_refused_and_nothing_is_written(root: Path, name: str, message: str) -> None:
    registry = registry_files(root)

    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scaffold.scaffold(name, "lambda", pattern=None, root=root)

    assert registry_files(root) == registry


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ("[]", "must hold a non-empty JSON object"),
        ('{"source": ["aws.s3"]}', "leave it out"),
        ('{"detail": {"object": {"key": [{"wildcard": "a**b"}]}}}', "Event pattern is not valid"),
        ('{"detail": {"object": {"size": [{"numeric": [">", 10, "<", 5]}]}}}', "Event pattern is not valid"),
    ],
)
def test_bad_pattern_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)

    with pytest.raises(UsageError, match=message):
        scaffold.read_pattern_file(path)


def test_unknown_target_is_refused(root: Path) -> None:
    with pytest.raises(UsageError, match="unknown target 'kinesis'"):
        scaffold.scaffold("x", "kinesis", pattern=None, root=root)


def test_the_entry_is_a_data_file_not_python(root: Path) -> None:
    result = scaffold.scaffold("archive-copy", "sqs", pattern=None, root=root)

    assert result.files == (Path("consumers/archive-copy.json"),)
    entry = json.loads((root / "consumers" / "archive-copy.json").read_text())
    assert entry["target"] == {"kind": "sqs"}
    assert entry["events"] == {"type": "created"}


def test_the_cli_scaffolds_into_the_project_root(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scaffold, "PROJECT_ROOT", root)
    app = typer.Typer()
    cli.register(app)

    result = CliRunner().invoke(app, ["consumers", "new", "fan-out", "--target", "sns", "--json"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "name": "fan-out",
        "target": "sns",
        "files": ["consumers/fan-out.json"],
    }
    again = CliRunner().invoke(app, ["consumers", "new", "fan-out", "--target", "sns"])
    assert again.exit_code == 2
    assert again.stderr.strip() == "error: consumer 'fan-out' already exists (registry: consumers/)"
