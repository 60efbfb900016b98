"""Datasets: which schema and which item key apply to an object, chosen by its key prefix.

The configuration is `schemas/datasets.json`, found next to the code (never via the working directory).
Schemas are compiled on first use, once per dataset, so cold starts pay only for what they ingest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"  # functions/core/domain/ -> root
DATASETS_FILE = SCHEMAS_DIR / "datasets.json"

Validator = Callable[[Any], str | None]


class DatasetConfigError(ValueError):
    """schemas/datasets.json is malformed (a deployment error, raised at first use)."""


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    prefix: str = ""
    schema_file: str | None = None
    natural_key: tuple[str, ...] = ()

    @property
    def has_natural_key(self) -> bool:
        return bool(self.natural_key)

    def validator(self) -> Validator | None:
        """A function returning None for a valid record or the first violation, compiled once."""
        if self.schema_file is None:
            return None
        compiled = _COMPILED.get(self.schema_file)
        if compiled is None:
            compiled = _COMPILED[self.schema_file] = _compile(SCHEMAS_DIR / self.schema_file)
        return compiled


_COMPILED: dict[str, Validator] = {}


def _compile(path: Path) -> Validator:
    import fastjsonschema  # deferred: only datasets with a schema pay for it

    check = fastjsonschema.compile(json.loads(path.read_text(encoding="utf-8")))

    def validate(record: Any) -> str | None:
        try:
            check(record)
        except fastjsonschema.JsonSchemaValueException as violation:
            return str(violation.message)
        return None

    return validate


@dataclass(frozen=True, slots=True)
class DatasetRegistry:
    default: Dataset
    by_prefix: tuple[Dataset, ...]

    def for_key(self, key: str) -> Dataset:
        """The dataset of the longest prefix matching `key`, else the default dataset."""
        for dataset in self.by_prefix:
            if key.startswith(dataset.prefix):
                return dataset
        return self.default

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DatasetRegistry:
        try:
            default = _dataset(config.get("default", {"name": "default"}), prefix_required=False)
            datasets = [_dataset(entry, prefix_required=True) for entry in config.get("datasets", [])]
        except (KeyError, TypeError, ValueError) as bad:
            raise DatasetConfigError(f"schemas/datasets.json: {bad}") from None
        datasets.sort(key=lambda d: len(d.prefix), reverse=True)
        return cls(default=default, by_prefix=tuple(datasets))

    @classmethod
    def load(cls, path: Path = DATASETS_FILE) -> DatasetRegistry:
        return cls.from_config(json.loads(path.read_text(encoding="utf-8")))


def _dataset(entry: Mapping[str, Any], *, prefix_required: bool) -> Dataset:
    name = str(entry["name"])
    prefix = str(entry["prefix"]) if prefix_required else ""
    if prefix_required and not prefix:
        raise ValueError(f"dataset {name!r} needs a non-empty prefix")
    schema = entry.get("schema")
    if schema is not None and not (SCHEMAS_DIR / str(schema)).is_file():
        raise ValueError(f"dataset {name!r}: schema file {schema!r} not found in schemas/")
    natural_key = tuple(str(f) for f in entry.get("natural_key", ()))
    if any(not f for f in natural_key):
        raise ValueError(f"dataset {name!r}: natural_key fields must be non-empty")
    return Dataset(name=name, prefix=prefix, schema_file=schema, natural_key=natural_key)
