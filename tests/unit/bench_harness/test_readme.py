"""The README's results section is generated from results.json: markers replaced, the rest untouched."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from bench import readme

FIXTURE = Path(__file__).with_name("results_fixture.json")
README = f"""# Project

Intro text that must survive | with pipes.

{readme.BEGIN}
| old | hand-typed table |
|---|---|
| 0.42x | met |
{readme.END}

## After

Trailing text, no newline at the end."""


@pytest.fixture
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return loaded


def test_the_section_between_the_markers_is_replaced_and_the_rest_is_untouched(
    document: dict[str, Any],
) -> None:
    updated = readme.replace_section(README, readme.render(document))

    head, rest = updated.split(readme.BEGIN)
    section, tail = rest.split(readme.END)
    assert head == README.split(readme.BEGIN)[0]
    assert tail == README.split(readme.END)[1]
    assert "0.42x" not in section
    assert section == "\n" + readme.render(document)


def test_the_run_is_identified_by_date_commit_and_machine(document: dict[str, Any]) -> None:
    section = readme.render(document)

    assert "run of 2026-11-30T07:00:00+00:00, commit `0123456789ab`." in section
    assert "2 cores (AMD EPYC), CPython 3.11.7" in section
    assert "boto3 1.44.5, moto 5.2.5, aws-lambda-powertools 3.37.0" in section
    assert "412 s in all" in section
    assert "load average 1.50 at the start, 9.87 at the end" in section


def test_goals_metrics_errors_and_notes_come_from_the_document(document: dict[str, Any]) -> None:
    section = readme.render(document)

    assert "| 2 CPU per record | all-in CPU per record <= 12x json.loads | 13.7 | **missed** |" in section
    cold_start = "import + first-invocation setup <= 1.2x import boto3 + the same clients"
    assert f"| 4 cold start | {cold_start} | 1.15 | met |" in section
    assert "| plain json.loads | us/record | 3.41 | 3.36 .. 3.47 | 7 |" in section
    assert "error: RuntimeError: emulator did not start" in section
    assert "- client \\| stage note" in section  # a pipe in a note cannot break the table


def test_the_scale_section_shows_every_writer_count_in_order_and_the_formula(
    document: dict[str, Any],
) -> None:
    section = readme.render(document)

    assert "| writers | 1 | 2 | 4 | 8 | 16 |" in section
    assert "| records/s | 1,612 | 3,190 | 6,204 | 11,020 | 14,210 |" in section
    assert "Latency model: 15 ms per request." in section
    assert "sequential 620, pool of 16 writers 71.9" in section
    assert "400,000 of 400,000 records found, 8 ranges" in section
    assert "tables identical: yes" in section
    assert "Projected minutes for 25M records: **11.2**" in section
    formula = document["scale"]["projected_minutes_for_25M_records"]["formula"]
    assert f"Formula: `{formula}` with records = 25,000,000" in section


def test_a_document_without_scale_renders_without_the_scale_section(document: dict[str, Any]) -> None:
    without = copy.deepcopy(document)
    del without["scale"]

    section = readme.render(without)

    assert "Scale" not in section
    assert "| 2 CPU per record |" in section


@pytest.mark.parametrize(
    "broken",
    [
        "no markers at all",
        f"{readme.END}\n{readme.BEGIN}",
        f"{readme.BEGIN}\n{readme.BEGIN}\n{readme.END}",
    ],
    ids=["missing", "reversed", "twice"],
)
def test_a_readme_without_one_pair_of_markers_is_refused(broken: str) -> None:
    with pytest.raises(readme.MarkersError):
        readme.replace_section(broken, "section\n")


def test_projection_inputs_of_any_kind_render_and_assumptions_become_a_list(document: dict[str, Any]) -> None:
    projection = document["scale"]["projected_minutes_for_25M_records"]
    projection["inputs"] = {"records": 25_000_000, "note": "text", "assumptions": ["one", "two"]}

    markdown = readme.render(document)

    assert "records = 25,000,000, note = text." in markdown
    assert "- one\n- two" in markdown
