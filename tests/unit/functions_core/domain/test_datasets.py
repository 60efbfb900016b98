"""Dataset selection by key prefix, configuration errors, and lazy one-time schema compilation."""

from __future__ import annotations

from typing import Any

import pytest

from functions.core.domain import datasets
from functions.core.domain.datasets import DatasetConfigError, DatasetRegistry


def test_shipped_configuration_routes_people_and_defaults_everything_else() -> None:
    registry = DatasetRegistry.load()

    people = registry.for_key("people/team.jsonl")
    other = registry.for_key("sample.json")

    assert (people.name, people.schema_file, people.natural_key) == (
        "people",
        "people.schema.json",
        ("Email",),
    )
    assert (other.name, other.schema_file, other.natural_key) == ("default", None, ())
    assert other.validator() is None


def test_the_longest_matching_prefix_wins() -> None:
    registry = DatasetRegistry.from_config(
        {
            "datasets": [
                {"name": "all-people", "prefix": "people/"},
                {"name": "contractors", "prefix": "people/contractors/"},
            ]
        }
    )

    assert registry.for_key("people/contractors/a.json").name == "contractors"
    assert registry.for_key("people/a.json").name == "all-people"
    assert registry.for_key("peoplex/a.json").name == "default"


@pytest.mark.parametrize(
    "config",
    [
        {"datasets": [{"prefix": "x/"}]},
        {"datasets": [{"name": "x", "prefix": ""}]},
        {"datasets": [{"name": "x", "prefix": "x/", "schema": "missing.schema.json"}]},
        {"datasets": [{"name": "x", "prefix": "x/", "natural_key": [""]}]},
    ],
    ids=["no name", "empty prefix", "missing schema file", "empty natural key field"],
)
def test_a_broken_configuration_fails_with_a_message_naming_the_file(config: dict[str, Any]) -> None:
    with pytest.raises(DatasetConfigError, match=r"schemas/datasets\.json"):
        DatasetRegistry.from_config(config)


def test_a_schema_is_compiled_once_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real_compile = datasets._compile

    def counting_compile(path: Any) -> Any:
        compiled.append(path.name)
        return real_compile(path)

    monkeypatch.setattr(datasets, "_COMPILED", {})
    monkeypatch.setattr(datasets, "_compile", counting_compile)
    people = DatasetRegistry.load().for_key("people/a.json")
    assert compiled == []  # loading the registry compiles nothing

    validate = people.validator()
    assert validate is not None
    assert validate({"Name": "Ann", "Role": "Dev", "Email": "ann@example.com"}) is None
    assert "Email" in (validate({"Name": "Ann", "Role": "Dev"}) or "")
    assert people.validator() is validate
    assert compiled == ["people.schema.json"]
