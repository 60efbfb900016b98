"""`eventpipe demo` (`make demo`): the whole pipeline offline on the shipped samples, verified against
samples/expected.json, plus the verification rules on their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from eventpipe.local.demo import Landed, Reject, sample_files, verify
from eventpipe.local.deploy import ensure_template, template_is_stale

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI, as `make demo` runs it, on the template the session's emulator uses: re-synthesizing
    cdk.out here could race with the other test workers reading it (staleness has its own test)."""
    env = {**os.environ, "COLUMNS": "160"}
    env.pop("AWS_ENDPOINT_URL", None)
    template = ensure_template("dev")
    return subprocess.run(
        [sys.executable, "-m", "eventpipe.ops.main", "demo", "--template", str(template), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.integration
def test_demo_on_the_shipped_samples_lands_what_is_expected(tmp_path: Path) -> None:
    done = _run_demo("--state-dir", str(tmp_path / "state"))

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for heading in (
        "DynamoDB items",
        "Rejects",
        "Dead-letter and failure queues",
        "smoke test of eventpipe-dev",
        "wall time:",
        "demo passed",
    ):
        assert heading in done.stdout
    assert "sample.json" in done.stdout
    assert "Name=SampathShivaKumar" in done.stdout  # the tutorial's record, shown as it landed
    print(next(line for line in done.stdout.splitlines() if line.startswith("wall time:")))


@pytest.mark.integration
def test_demo_exits_1_with_a_one_line_reason_when_what_landed_differs(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    (samples / "nested dir").mkdir(parents=True)
    (samples / "nested dir" / "one record.json").write_text('{"Name": "Only", "Role": "One"}')
    expected = {"objects": {"nested dir/one record.json": {"items": 2, "rejects": []}}}
    (samples / "expected.json").write_text(json.dumps(expected))

    done = _run_demo("--samples-dir", str(samples), "--state-dir", str(tmp_path / "state"))

    assert done.returncode == 1
    reason = "nested dir/one record.json: 1 item(s) landed, expected 2"
    assert done.stderr.strip().splitlines() == [f"error: what landed differs from expected.json: {reason}"]
    assert "one record.json" in done.stdout  # the tables still show what did land


# --- the pieces ---------------------------------------------------------------------------------------


def _landed() -> Landed:
    return Landed(
        items=[
            {"pk": "sample.json#00", "sk": "000000000001", "source_key": "sample.json", "data": {}},
            {"pk": "people#a@x.io", "sk": "record", "source_key": "people/team.jsonl", "data": {}},
        ],
        rejects=[Reject(object_key="people/team.jsonl", position=2, reason="invalid_json", detail="")],
        queue_depths={"IngestDlq": 0, "IngestFailureQueue": 0},
    )


EXPECTED = {
    "objects": {
        "sample.json": {"items": 1, "rejects": []},
        "people/team.jsonl": {"items": 1, "rejects": [{"position": 2, "reason": "invalid_json"}]},
    }
}


def test_verify_accepts_exactly_what_was_expected() -> None:
    assert verify(EXPECTED, _landed()) == []


def test_verify_reports_a_missing_item() -> None:
    landed = _landed()
    landed.items.pop(0)

    assert verify(EXPECTED, landed) == ["sample.json: 0 item(s) landed, expected 1"]


def test_verify_reports_a_different_reject() -> None:
    landed = _landed()
    landed.rejects[0] = Reject(
        object_key="people/team.jsonl", position=2, reason="schema_violation", detail=""
    )

    assert verify(EXPECTED, landed) == [
        "people/team.jsonl: rejects [(2, 'schema_violation')] differ from expected [(2, 'invalid_json')]"
    ]


def test_verify_compares_record_contents_exactly_when_expected_lists_them() -> None:
    landed = _landed()
    landed.items[0]["data"] = {"Name": "John Doe", "Age": Decimal(42)}
    expected = {"objects": {**EXPECTED["objects"], "sample.json": {"items": 1, "rejects": []}}}
    expected["objects"]["sample.json"]["records"] = [{"Name": "John Doe", "Age": 42}]

    assert verify(expected, landed) == []

    landed.items[0]["data"] = {"Name": "John Doe", "Age": Decimal(43)}

    assert len(verify(expected, landed)) == 1
    assert verify(expected, landed)[0].startswith("sample.json: records ")


def test_verify_reports_unexpected_objects_and_dead_letters() -> None:
    landed = _landed()
    landed.items.append({"pk": "stray.json#00", "sk": "000000000001", "source_key": "stray.json", "data": {}})
    landed.queue_depths["IngestFailureQueue"] = 2

    assert verify(EXPECTED, landed) == [
        "stray.json: 1 unexpected item(s)",
        "IngestFailureQueue holds 2 message(s)",
    ]


def test_samples_are_keyed_by_relative_path_without_the_expectations(tmp_path: Path) -> None:
    (tmp_path / "people").mkdir()
    for name in ("sample.json", "people/new hires.json", "expected.json"):
        (tmp_path / name).write_text("{}")

    assert list(sample_files(tmp_path)) == ["people/new hires.json", "sample.json"]


def test_the_template_is_stale_when_missing_or_older_than_a_cdk_source(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    source = tmp_path / "infra" / "stack.py"
    source.write_text("")
    template = tmp_path / "cdk.out" / "eventpipe-dev.template.json"
    assert template_is_stale(template, tmp_path)

    template.parent.mkdir()
    template.write_text("{}")
    os.utime(source, (1_000, 1_000))
    assert not template_is_stale(template, tmp_path)

    os.utime(source, None)
    os.utime(template, (1_000, 1_000))
    assert template_is_stale(template, tmp_path)
