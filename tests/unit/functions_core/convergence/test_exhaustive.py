"""Convergence, proven for every history of one key up to four operations and every delivery schedule
of its events (see `exhaustive.py` for the model, the schedules and the pruning)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .exhaustive import SCENARIOS, Checker, operation_sequences

MAX_OPERATIONS = 4
CHUNKS = 4  # each scenario's sequences are split over a few tests, so pytest-xdist can share them


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_schedule_of_every_short_history_converges(
    scenario: str, chunk: int, record_property: Callable[[str, Any], None]
) -> None:
    sequences = schedules = states = 0
    failures: list[str] = []
    for length in range(1, MAX_OPERATIONS + 1):
        for number, operations in enumerate(operation_sequences(SCENARIOS[scenario].versioned, length)):
            if number % CHUNKS != chunk:
                continue
            result = Checker(SCENARIOS[scenario], operations).run()
            sequences += 1
            schedules += result.schedules
            states += result.states
            failures += result.failures

    record_property(f"exhaustive:{scenario}: histories", sequences)
    record_property(f"exhaustive:{scenario}: schedules", schedules)
    record_property(f"exhaustive:{scenario}: distinct states explored", states)
    assert not failures, f"{len(failures)} schedules diverge, e.g.:\n" + "\n".join(failures[:5])
    assert schedules > sequences  # the search ran (a broken enumerator would check nothing)


def test_the_enumeration_covers_every_s3_operation_on_both_bucket_kinds() -> None:
    versioned = {op[0] for ops in operation_sequences(True, 3) for op in ops}
    unversioned = {op[0] for ops in operation_sequences(False, 2) for op in ops}

    assert versioned == {"put", "delete", "expire-current", "delete-version", "expire-noncurrent"}
    assert unversioned == {"put", "delete", "expire-current"}
    # The bound: every sequence of 4 operations (shorter ones too); for a versioned key that is
    # put / delete / lifecycle expiration plus the deletion of any one of its versions or markers.
    assert sum(1 for _ in operation_sequences(True, MAX_OPERATIONS)) == 155
    assert sum(1 for _ in operation_sequences(False, MAX_OPERATIONS)) == 11


@pytest.mark.parametrize(
    ("operations", "wrong"),
    [
        # The orderings issue 9 reported, each of which left the table wrong before the fix.
        ((("put",), ("delete",), ("delete-version", 1)), "a removed delete marker"),
        ((("put",), ("put",), ("put",), ("delete-version", 2)), "a deleted current version"),
    ],
)
def test_the_checker_explores_the_reported_counterexamples(operations: Any, wrong: str) -> None:
    result = Checker(SCENARIOS["versioned"], operations).run()

    assert result.failures == []
    assert result.schedules > 1000, wrong
