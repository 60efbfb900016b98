"""What a benchmark reports: its inputs, measured metrics (median + spread) and the verdict on its goal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.stats import Summary


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    summary: Summary

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, **self.summary.as_dict()}


@dataclass(frozen=True, slots=True)
class Goal:
    """A target from issue 6; `met` is None when the figure could not be measured."""

    description: str
    measured: float | None
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"description": self.description, "measured": self.measured, "met": self.met}


@dataclass(slots=True)
class BenchResult:
    key: str
    title: str
    inputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add(self, name: str, unit: str, samples: list[float] | Summary) -> Summary:
        summary = samples if isinstance(samples, Summary) else Summary.of(samples)
        self.metrics.append(Metric(name, unit, summary))
        return summary

    def goal(self, description: str, measured: float | None, met: bool | None) -> None:
        self.goals.append(Goal(description, measured, met))

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "inputs": self.inputs,
            "metrics": [metric.as_dict() for metric in self.metrics],
            "goals": [goal.as_dict() for goal in self.goals],
            "notes": self.notes,
            "error": self.error,
        }
