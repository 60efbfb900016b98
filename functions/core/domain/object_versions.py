"""What S3 holds under a key, as the use cases see it: the current version, none, or an unreadable one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import IO


class UnreadableVersionError(Exception):
    """The object version exists but can never be read by ingest: report it, do not retry it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


@dataclass(frozen=True, slots=True)
class CurrentVersion:
    """The version a plain GetObject (no VersionId) returns, open for reading."""

    body: IO[bytes]
    version_id: str | None
    etag: str | None  # unquoted, as S3 events carry it


@dataclass(frozen=True, slots=True)
class NoCurrentVersion:
    """The key reads as absent: its current version is a delete marker (S3 names it) or it has none."""

    delete_marker_version_id: str | None = None


class Presence(Enum):
    """What S3 holds under one key, as far as one event is concerned (used to tell which key it names)."""

    ANNOUNCED = "the version or content the event announced is there"
    OTHER = "the key exists (some version or a delete marker), not the announced one"
    NONE = "nothing under that key"
