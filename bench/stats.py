"""Summaries of repeated measurements: the median is the figure, min/max show the spread."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Summary:
    """Median and spread of one measured quantity over several runs."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("a summary needs at least one sample")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    @property
    def spread_pct(self) -> float:
        """(max - min) / median, in percent: how much the runs disagree."""
        return 0.0 if self.median == 0 else 100.0 * (self.high - self.low) / abs(self.median)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "runs": self.runs,
            "spread_pct": round(self.spread_pct, 1),
        }


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100): a value that was actually observed."""
    if not samples:
        raise ValueError("a percentile needs at least one sample")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]
