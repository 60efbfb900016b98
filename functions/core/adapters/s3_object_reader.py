"""Reading source objects from S3, pinned to the exact version an event announced (the `ObjectReader`
port of the use cases), and which S3 errors mean gone, absent or never readable."""

from __future__ import annotations

from typing import IO, Any

from botocore.exceptions import ClientError

from functions.core.domain.object_versions import (
    CurrentVersion,
    NoCurrentVersion,
    Presence,
    UnreadableVersionError,
)

# NoSuchVersion / NoSuchKey: the announced version is gone; PreconditionFailed: an unversioned key
# was overwritten since (its ETag changed). Either way a later event describes the current content.
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "PreconditionFailed", "404", "412"})
# A key whose current version is a delete marker, or that has no version at all.
ABSENT_CODES = frozenset({"NoSuchKey", "404"})
# Errors no retry can fix, because they belong to the object version itself (S3 API reference,
# GetObject, and the S3 error-code list): an archived object that is not restored (InvalidObjectState,
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html); an object encrypted with a
# customer-provided key, which GetObject refuses without that key (InvalidRequest / 400); and a KMS key
# that is disabled, pending deletion or missing (KMS.* codes). An AccessDenied that names KMS means the
# object's key policy does not let ingest decrypt it: a property of that object, unlike a plain
# AccessDenied (our own role), which is raised so that the fix (a deploy) plus a redrive recovers it.
PERMANENT_CODES = frozenset({"InvalidObjectState", "InvalidRequest", "400"})


class S3ObjectReader:
    def __init__(self, client: Any) -> None:
        self._client = client

    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes] | None:
        try:
            response = self._client.get_object(**_pinned(bucket, key, version_id, etag))
        except ClientError as error:
            if _code(error) in GONE_CODES:
                return None
            _raise_if_permanent(error)
            raise
        body: IO[bytes] = response["Body"]
        return body

    def open_range(
        self, bucket: str, key: str, *, version_id: str | None, etag: str | None, start: int, end: int | None
    ) -> IO[bytes] | None:
        # GetObject's Range takes one HTTP byte range, `bytes=first-last` or `bytes=first-`
        # (S3 API Reference, GetObject: Range; RFC 9110 section 14.1.2).
        arguments = _pinned(bucket, key, version_id, etag)
        arguments["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            response = self._client.get_object(**arguments)
        except ClientError as error:
            if _code(error) in GONE_CODES:
                return None
            _raise_if_permanent(error)
            raise
        body: IO[bytes] = response["Body"]
        return body

    def open_current(self, bucket: str, key: str) -> CurrentVersion | NoCurrentVersion:
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _code(error) not in ABSENT_CODES:
                _raise_if_permanent(error)
                raise
            _, marker = _delete_marker(error)
            return NoCurrentVersion(delete_marker_version_id=marker)
        etag = response.get("ETag")
        return CurrentVersion(
            body=response["Body"],
            version_id=response.get("VersionId"),
            etag=etag.strip('"') if etag else None,
        )

    def presence(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> Presence:
        if version_id is not None or etag is not None:
            try:
                self._client.head_object(**_pinned(bucket, key, version_id, etag))
                return Presence.ANNOUNCED
            except ClientError as error:
                # HEAD of a delete marker's version id answers 405 with x-amz-delete-marker: that marker.
                if _code(error) in {"405", "MethodNotAllowed"} and _delete_marker(error)[0]:
                    return Presence.ANNOUNCED
                if _permanent(error):
                    return Presence.ANNOUNCED  # there, but unreadable: reading it will report that
                if _code(error) not in GONE_CODES:
                    raise
        try:
            self._client.head_object(Bucket=bucket, Key=key)
            return Presence.OTHER
        except ClientError as error:
            if _permanent(error):
                return Presence.OTHER
            if _code(error) not in ABSENT_CODES:
                raise
            # A 404 naming a delete marker: the key exists, hidden behind the marker.
            return Presence.OTHER if _delete_marker(error)[0] else Presence.NONE

    def is_live(self, bucket: str, key: str) -> bool:
        try:
            self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _permanent(error):
                return True
            if _code(error) not in ABSENT_CODES:
                raise
            return False
        return True


def _pinned(bucket: str, key: str, version_id: str | None, etag: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id is not None:
        arguments["VersionId"] = version_id
    elif etag is not None:
        # Unversioned bucket: only the ETag tells this content from a later overwrite.
        arguments["IfMatch"] = etag if etag.startswith('"') else f'"{etag}"'
    return arguments


def _delete_marker(error: ClientError) -> tuple[bool, str | None]:
    """Whether an S3 error response is about a delete marker, and the marker's version id if named.
    S3 answers a key hidden by a delete marker with a 404 carrying `x-amz-delete-marker: true`."""
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    if headers.get("x-amz-delete-marker") != "true":
        return False, None
    return True, headers.get("x-amz-version-id")


def _permanent(error: ClientError) -> bool:
    code = _code(error)
    message = str(error.response.get("Error", {}).get("Message", ""))
    kms_denied = code in {"AccessDenied", "403"} and "kms" in message.lower()
    return code in PERMANENT_CODES or code.startswith("KMS.") or kms_denied


def _raise_if_permanent(error: ClientError) -> None:
    if _permanent(error):
        code = _code(error)
        raise UnreadableVersionError(code, str(error.response.get("Error", {}).get("Message", ""))) from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))
