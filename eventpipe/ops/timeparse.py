"""Times on the command line: ISO-8601 (`2026-11-26T10:00:00Z`, `2026-11-26`) or relative to now
(`-2h`, `30m`, `1d12h`, `now`). Relative forms always mean the past: `30m` is thirty minutes ago."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from eventpipe.contract.errors import UsageError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_RELATIVE = re.compile(r"^-?((?:\d+[smhdw])+)$")
_PART = re.compile(r"(\d+)([smhdw])")
_DURATION = re.compile(r"^(?:\d+[smhdw])+$")


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime; naive ISO times are taken as UTC (operators think in UTC)."""
    current = now or datetime.now(UTC)
    value = text.strip().lower()
    if value == "now":
        return current
    relative = _RELATIVE.match(value)
    if relative:
        delta = timedelta()
        for amount, unit in _PART.findall(relative.group(1)):
            delta += timedelta(**{_UNITS[unit]: int(amount)})
        return current - delta
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise UsageError(
            f"cannot read time {text!r}: use ISO-8601 (2026-11-26T10:00:00Z) or relative (-2h, 30m, 1d)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `90`, `90s`, `2m`, `1m30s`, `1h` (a bare number is seconds)."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = float(value)
    elif _DURATION.match(value):
        seconds = sum(
            timedelta(**{_UNITS[unit]: int(amount)}).total_seconds() for amount, unit in _PART.findall(value)
        )
    else:
        raise UsageError(f"cannot read duration {text!r}: use e.g. 90s, 2m, 1m30s")
    if seconds <= 0:
        raise UsageError(f"duration {text!r} must be positive")
    return seconds


def format_time(moment: datetime | None) -> str:
    """Compact UTC rendering for tables; `-` for unknown."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_age(seconds: float | None) -> str:
    """`3d4h`, `12m30s`, `-` for unknown: enough precision to triage a queue."""
    if seconds is None:
        return "-"
    remaining = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
        if len(parts) == 2:
            break
    return "".join(parts)
