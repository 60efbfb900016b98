"""Command-line times: ISO-8601 and relative forms, always UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventpipe.contract.errors import UsageError
from eventpipe.ops.timeparse import format_age, parse_duration, parse_time

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T10:00:00Z", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26T10:00:00", datetime(2026, 11, 26, 10, tzinfo=UTC)),  # naive means UTC
        ("2026-11-26T11:00:00+01:00", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26", datetime(2026, 11, 26, tzinfo=UTC)),
        ("-2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("1d12h", NOW - timedelta(days=1, hours=12)),
        ("-45s", NOW - timedelta(seconds=45)),
        ("2w", NOW - timedelta(weeks=2)),
        ("now", NOW),
        (" NOW ", NOW),
    ],
)
def test_times_parse_to_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text, now=NOW)

    assert parsed == expected
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize("text", ["yesterday", "2h30", "-h", "", "2026-13-01", "+2h"])
def test_unreadable_times_are_a_one_line_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="cannot read time") as caught:
        parse_time(text, now=NOW)

    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (59.9, "59s"), (754, "12m34s"), (90061, "1d1h"), (7200, "2h")],
)
def test_ages_render_with_two_units_at_most(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("2m", 120), ("1m30s", 90), (" 1H ", 3600)]
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-2m", "2 minutes", "1.5m", "m"])
def test_a_duration_that_cannot_be_read_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        parse_duration(text)
