"""How many examples a property test runs: its own CI budget, or FUZZ_EXAMPLES under `make fuzz`."""

from __future__ import annotations

import os


def examples(ci_budget: int) -> int:
    if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz":
        return max(ci_budget, int(os.environ.get("FUZZ_EXAMPLES", "2000")))
    return ci_budget
