"""Stack output names: one PascalCase for infra (which writes them) and the CLI (which reads them)."""

from __future__ import annotations

import pytest

from eventpipe.contract.outputs import DLQ_URL, consumer_output, kebab_case, pascal_case


@pytest.mark.parametrize(
    ("name", "pascal"), [("ingest", "Ingest"), ("delete-sync", "DeleteSync"), ("a1-b2", "A1B2")]
)
def test_names_round_trip_between_registry_and_output_keys(name: str, pascal: str) -> None:
    assert pascal_case(name) == pascal
    assert kebab_case(pascal) == name


def test_a_consumer_output_is_its_pascal_name_and_the_suffix() -> None:
    assert consumer_output("delete-sync", DLQ_URL) == "DeleteSyncDlqUrl"
