"""Reading source objects from S3, pinned to the exact version an event announced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, Protocol

from botocore.exceptions import ClientError

# NoSuchVersion / NoSuchKey: the announced version is gone; PreconditionFailed: an unversioned key
# was overwritten since (its ETag changed). Either way a later event describes the current content.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "PreconditionFailed", "404", "412"})
# A key whose current version is a delete marker, or that has no version at all.
ABSENT_CODES = frozenset({"NoSuchKey", "404"})


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


class ObjectReader(Protocol):
    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes] | None:
        """A readable stream of exactly that object version, or None when it no longer exists."""
        ...

    def open_current(self, bucket: str, key: str) -> CurrentVersion | NoCurrentVersion:
        """Whatever version of the key is current right now (at least as new as any event seen)."""
        ...


class S3ObjectReader:
    def __init__(self, client: Any) -> None:
        self._client = client

    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes] | None:
        arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id is not None:
            arguments["VersionId"] = version_id
        elif etag is not None:
            # Unversioned bucket: only the ETag tells this content from a later overwrite.
            arguments["IfMatch"] = etag if etag.startswith('"') else f'"{etag}"'
        try:
            response = self._client.get_object(**arguments)
        except ClientError as error:
            if _code(error) in GONE_CODES:
                return None
            raise
        body: IO[bytes] = response["Body"]
        return body

    def open_current(self, bucket: str, key: str) -> CurrentVersion | NoCurrentVersion:
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _code(error) not in ABSENT_CODES:
                raise
            # S3 answers a key hidden by a delete marker with a 404 naming the marker.
            headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            marker = headers.get("x-amz-version-id") if headers.get("x-amz-delete-marker") == "true" else None
            return NoCurrentVersion(delete_marker_version_id=marker)
        etag = response.get("ETag")
        return CurrentVersion(
            body=response["Body"],
            version_id=response.get("VersionId"),
            etag=etag.strip('"') if etag else None,
        )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))
