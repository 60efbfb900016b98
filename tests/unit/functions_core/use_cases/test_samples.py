"""The demo's samples land exactly as samples/expected.json says (same code path, moto in-process)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from functions.core.use_cases.ingest import ingest_object

from ..conftest import World, parse

SAMPLES = Path(__file__).resolve().parents[4] / "samples"


def test_the_tutorial_sample_is_exactly_the_tutorials_file() -> None:
    # Byte for byte the tutorial's file (issue 13), spaces before the colons included.
    assert (SAMPLES / "sample.json").read_bytes() == (
        b'{\n  "Name" : "SampathShivaKumar",\n  "Role" : "DevOps",\n'
        b'  "Email": "sampathshivakumar@gmail.com"\n}\n'
    )


def test_samples_land_as_expected(world: World) -> None:
    expected = json.loads((SAMPLES / "expected.json").read_text())["objects"]
    services = world.services()
    files = {p.relative_to(SAMPLES).as_posix(): p for p in SAMPLES.rglob("*") if p.is_file()}
    files.pop("expected.json")
    assert set(files) == set(expected)

    reports = {}
    for key, path in sorted(files.items()):
        outcome = ingest_object(services, parse(world.put(key, path.read_bytes())))
        reports[key] = world.report(outcome.report_key) if outcome.report_key else []

    items_per_object = Counter(world.item(pk, sk)["source_key"] for pk, sk in world.records())
    for key, want in expected.items():
        assert items_per_object[key] == want["items"], key
        got = sorted((entry["position"], entry["reason"]) for entry in reports[key])
        assert got == sorted((r["position"], r["reason"]) for r in want["rejects"]), key
