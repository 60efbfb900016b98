"""Reading source objects from S3, pinned to the exact version an event announced."""

from __future__ import annotations

from typing import IO, Any, Protocol

from botocore.exceptions import ClientError

# NoSuchVersion / NoSuchKey: the announced version is gone; PreconditionFailed: an unversioned key
# was overwritten since (its ETag changed). Either way a later event describes the current content.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "PreconditionFailed", "404", "412"})


class ObjectReader(Protocol):
    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes] | None:
        """A readable stream of exactly that object version, or None when it no longer exists."""
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
            if str(error.response.get("Error", {}).get("Code")) in GONE_CODES:
                return None
            raise
        body: IO[bytes] = response["Body"]
        return body
