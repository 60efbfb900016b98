"""Synthetic input: JSON Lines of realistic ~200-byte records (strings, ints, floats, a bool, a list, a map).

Deterministic (a record depends only on its index) so every run and every baseline sees the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

_ROLES = ("Developer", "Designer", "Manager", "Analyst", "Tester", "Architect", "Operator")
_CITIES = ("Lisbon", "Berlin", "Nairobi", "Osaka", "Lima", "Toronto", "Perth")


def record(index: int) -> dict[str, object]:
    """One record shaped like the tutorial's people sample, plus the types real data carries."""
    return {
        "Name": f"Person {index:07d}",
        "Role": _ROLES[index % len(_ROLES)],
        "Email": f"person.{index}@example.com",
        "employee_id": 100_000 + index,
        "salary": round(35_000 + (index * 7919) % 90_000 + (index % 100) / 100, 2),
        "active": index % 3 != 0,
        "skills": ["python", "aws", "sql"][: 1 + index % 3],
        "address": {"city": _CITIES[index % len(_CITIES)], "zip": f"{index % 99_999:05d}"},
    }


def jsonl_lines(count: int, start: int = 0) -> Iterator[bytes]:
    """`count` newline-terminated JSON Lines, encoded as a writer would put them in S3."""
    for index in range(start, start + count):
        yield json.dumps(record(index), separators=(",", ":")).encode() + b"\n"


def jsonl_bytes(count: int) -> bytes:
    return b"".join(jsonl_lines(count))


def write_jsonl_of_size(path: Path, target_bytes: int) -> int:
    """Write records until the file reaches `target_bytes`; return the number of records."""
    written = records = 0
    with path.open("wb") as out:
        buffer: list[bytes] = []
        while written < target_bytes:
            line = json.dumps(record(records), separators=(",", ":")).encode() + b"\n"
            buffer.append(line)
            written += len(line)
            records += 1
            if len(buffer) >= 10_000:
                out.writelines(buffer)
                buffer.clear()
        out.writelines(buffer)
    return records
