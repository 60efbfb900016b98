"""Suite-wide settings: deterministic property tests in CI, and the exhaustive checker's totals."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# CI must not depend on luck: by default every property test runs with a fixed seed (derandomize), so a
# landing is reproducible. `make fuzz` (HYPOTHESIS_PROFILE=fuzz) explores with random seeds instead.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile(
    "fuzz",
    derandomize=False,
    deadline=None,
    print_blob=True,
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# Tests size themselves with `tests.fuzzing.examples(n)`, which the fuzz profile raises.


@pytest.fixture(autouse=True)
def _collectable_heap() -> Iterator[None]:
    """The Lambda wiring freezes the heap it built (lambda_services.keep_out_of_collections): right for
    a function's process, a leak for a test process that builds it again and again; thaw after each test."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many delivery schedules the exhaustive convergence checker proved (issue 9)."""
    totals: dict[str, int] = {}
    for report in terminalreporter.stats.get("passed", []):
        for name, value in getattr(report, "user_properties", []):
            if name.startswith("exhaustive:"):
                totals[name] = totals.get(name, 0) + int(value)
    if totals:
        terminalreporter.write_sep("-", "exhaustive convergence checker")
        for name, value in sorted(totals.items()):
            terminalreporter.write_line(f"{name.removeprefix('exhaustive:')}: {value:,}")
