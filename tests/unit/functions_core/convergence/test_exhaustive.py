"""Convergence, proven for every history of one key up to four operations (fewer for the fan-out and
hand-over scenarios, whose schedules are many more per history) and every delivery schedule of its
events and range tasks (see `exhaustive.py` for the model, the schedules and the pruning)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .exhaustive import SCENARIOS, Checker, operation_sequences

MAX_OPERATIONS = 4
# Per-scenario bounds where the default would cost too much CI time (measured: see the report of issue 12).
BOUNDS = {"fan-out": 2, "resumed": 4, "continued": 3}
CHUNKS = 4  # each scenario's sequences are split over a few tests, so pytest-xdist can share them
CHUNKS_OF = {"fan-out": 1}  # a scenario with few histories is one test
TESTS = [(scenario, chunk) for scenario in SCENARIOS for chunk in range(CHUNKS_OF.get(scenario, CHUNKS))]


@pytest.mark.parametrize(("scenario", "chunk"), TESTS)
def test_every_schedule_of_every_short_history_converges(
    scenario: str, chunk: int, record_property: Callable[[str, Any], None]
) -> None:
    sequences = schedules = states = fan_outs = commits = resumes = continuations = 0
    failures: list[str] = []
    for length in range(1, BOUNDS.get(scenario, MAX_OPERATIONS) + 1):
        for number, operations in enumerate(operation_sequences(SCENARIOS[scenario].versioned, length)):
            if number % CHUNKS_OF.get(scenario, CHUNKS) != chunk:
                continue
            result = Checker(SCENARIOS[scenario], operations).run()
            sequences += 1
            schedules += result.schedules
            states += result.states
            failures += result.failures
            fan_outs += result.fan_outs
            commits += result.range_commits
            resumes += result.resumes
            continuations += result.continuations

    record_property(f"exhaustive:{scenario}: histories", sequences)
    record_property(f"exhaustive:{scenario}: schedules", schedules)
    record_property(f"exhaustive:{scenario}: distinct states explored", states)
    if SCENARIOS[scenario].fanout_threshold is not None:
        record_property(f"exhaustive:{scenario}: distinct fan-outs", fan_outs)
        record_property(f"exhaustive:{scenario}: distinct fan-out commits", commits)
        assert fan_outs > 0  # the scenario does fan out
        assert commits > 0  # and its fan-outs commit
    if SCENARIOS[scenario].hand_over:
        record_property(f"exhaustive:{scenario}: distinct hand-overs", continuations)
        assert continuations > 0  # attempts and continuations do hand over
    elif SCENARIOS[scenario].checkpoint_every is not None:
        record_property(f"exhaustive:{scenario}: distinct resumed ingests", resumes)
        assert resumes > 0 or sequences < 3  # retries do resume (histories of two or more puts)
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
