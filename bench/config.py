"""Sizes and repetitions of a benchmark run; `--scale` / `--quick` shrink them for fast checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Full-size inputs from issue 6; each is multiplied by `scale`.
THROUGHPUT_RECORDS = 20_000
CPU_RECORDS = 20_000
MEMORY_OBJECT_MB = 200
END_TO_END_OBJECTS = 500


@dataclass(frozen=True, slots=True)
class BenchConfig:
    scale: float = 1.0
    runs: int = 5  # heavy benchmarks (throughput, memory): each run repeats the baseline too
    light_runs: int = 7  # cheap ones (CPU, cold start)
    project_root: Path = PROJECT_ROOT
    work_dir: Path = field(default_factory=lambda: PROJECT_ROOT / ".build" / "bench")

    def scaled(self, full_size: int, minimum: int) -> int:
        return max(minimum, round(full_size * self.scale))

    @property
    def memory_runs(self) -> int:
        """Peak memory barely varies (spread ~2%) and each run streams 200 MB: three runs are plenty."""
        return min(self.runs, 3)

    @property
    def throughput_records(self) -> int:
        return self.scaled(THROUGHPUT_RECORDS, 50)

    @property
    def cpu_records(self) -> int:
        return self.scaled(CPU_RECORDS, 200)

    @property
    def memory_object_bytes(self) -> int:
        return self.scaled(MEMORY_OBJECT_MB * 1024 * 1024, 256 * 1024)

    @property
    def end_to_end_objects(self) -> int:
        return self.scaled(END_TO_END_OBJECTS, 5)

    def describe(self) -> dict[str, Any]:
        described = asdict(self)
        described.pop("project_root")
        described.pop("work_dir")
        return described | {
            "memory_runs": self.memory_runs,
            "throughput_records": self.throughput_records,
            "cpu_records": self.cpu_records,
            "memory_object_bytes": self.memory_object_bytes,
            "end_to_end_objects": self.end_to_end_objects,
        }
